"""RedisSpend against a real redis-server: several ledgers (as several processes would) share one budget."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import pytest
from cluster_support import RedisServer, make_cluster_config

from agentdeck.budget import BudgetExceeded
from agentdeck.budget.ledger import Ledger
from agentdeck.bus import Alert, Bus
from agentdeck.state.redis_link import ClusterUnavailable, RedisLink
from agentdeck.state.redis_spend import RedisSpend


def _spend(tmp_path: Path, url: str, **cluster: Any) -> tuple[RedisSpend, Bus]:
    cfg = make_cluster_config(tmp_path, url, budget={"hourly_usd": 0.02, "daily_usd": 1.0}, **cluster)
    bus = Bus()
    return RedisSpend(RedisLink(cfg.cluster, bus), Ledger(cfg, bus)), bus


async def test_300_calls_over_three_ledgers_never_pass_the_shared_budget(tmp_path: Path, redis_server: RedisServer) -> None:
    parts = [_spend(tmp_path, redis_server.url)[0] for _ in range(3)]
    settled: list[float] = []

    async def caller(i: int) -> None:
        spend = parts[i % 3]
        try:
            hold = await spend.reserve("dev", 0.0015)
        except BudgetExceeded:
            return
        await asyncio.sleep(random.random() * 0.01)
        cost = 0.0015 * random.choice((0.0, 0.5, 1.0))
        settled.append(cost)
        await spend.settle(hold, cost)

    await asyncio.gather(*(caller(i) for i in range(300)))
    totals = await parts[0].totals()
    assert totals["hour_usd"] <= 0.02 + 1e-9
    assert totals["hour_usd"] == pytest.approx(sum(settled), abs=1e-9)
    assert totals["open_reservations"] == 0 and totals["reservation_rows"] == 0 and totals["reserved_usd"] == 0
    assert len(settled) >= 13  # the budget was used, not refused wholesale
    for p in parts:
        await p.link.close()


async def test_the_holds_of_a_dead_process_expire_after_the_lease(tmp_path: Path, redis_server: RedisServer) -> None:
    dead, _ = _spend(tmp_path, redis_server.url, lease_s=0.3)
    alive, _ = _spend(tmp_path, redis_server.url, lease_s=0.3)
    await dead.reserve("dev", 0.02)
    await dead.close()  # it stops renewing, as a killed process would
    with pytest.raises(BudgetExceeded) as refused:
        await alive.reserve("dev", 0.01)
    assert "reserved by calls in flight" in refused.value.message
    for _ in range(100):
        await asyncio.sleep(0.05)
        try:
            hold = await alive.reserve("dev", 0.01)
            break
        except BudgetExceeded:
            continue
    else:
        raise AssertionError("the dead process's hold never expired")
    await alive.settle(hold, 0.01)
    assert (await alive.totals())["open_reservations"] == 0
    await dead.link.close()
    await alive.link.close()


async def test_live_holds_are_renewed_past_the_lease(tmp_path: Path, redis_server: RedisServer) -> None:
    spend, _ = _spend(tmp_path, redis_server.url, lease_s=0.3)
    hold = await spend.reserve("dev", 0.02)
    await asyncio.sleep(1.0)  # three leases: only renewal keeps it
    with pytest.raises(BudgetExceeded):
        await spend.reserve("dev", 0.01)
    await spend.settle(hold, 0.005)
    assert (await spend.totals())["hour_usd"] == pytest.approx(0.005)
    await spend.close()
    await spend.link.close()


async def test_redis_down_refuses_new_holds_and_settles_when_back(tmp_path: Path, redis_server: RedisServer) -> None:
    spend, bus = _spend(tmp_path, redis_server.url)
    sub = bus.subscribe("t")
    hold = await spend.reserve("dev", 0.004)
    redis_server.stop()
    with pytest.raises(ClusterUnavailable) as down:
        await spend.reserve("dev", 0.001)
    assert down.value.status == 503 and down.value.code == "cluster_unavailable"
    assert f"127.0.0.1:{redis_server.port}" in down.value.message
    await spend.settle(hold, 0.003)  # the call in flight finishes; its spend waits for Redis
    assert spend.pending_settlements == 1
    assert any(isinstance(e, Alert) and e.severity == "P0" and e.kind == "cluster-redis-down" for e in sub.drain())
    redis_server.start()
    for _ in range(100):
        if spend.link.up and spend.pending_settlements == 0:
            break
        await asyncio.sleep(0.05)
    # A restarted Redis without persistence has lost the windows; what was queued is written into them.
    assert (await spend.totals())["hour_usd"] == pytest.approx(0.003)
    assert any(isinstance(e, Alert) and e.kind == "cluster-redis-back" for e in sub.drain())
    await spend.close()
    await spend.link.close()


async def test_local_fallback_uses_this_process_ledger_while_down(tmp_path: Path, redis_server: RedisServer) -> None:
    spend, bus = _spend(tmp_path, redis_server.url, on_redis_down="local")
    redis_server.stop()
    hold = await spend.reserve("dev", 0.015)
    with pytest.raises(BudgetExceeded):
        await spend.reserve("dev", 0.015)  # the local ledger's own budget still holds
    await spend.settle(hold, 0.01)
    assert spend.ledger.spent("hourly") == pytest.approx(0.01)
    assert spend.ledger.open_reservations == 0
    await spend.close()
    await spend.link.close()


async def test_key_names_with_any_character_and_sessions_free_their_holds(tmp_path: Path, redis_server: RedisServer) -> None:
    spend, _ = _spend(tmp_path, redis_server.url)
    spend.ledger.set_key_budget("run-1", 0.01)
    hold = await spend.reserve("team|a", 0.008, session="run-1")
    with pytest.raises(BudgetExceeded) as refused:
        await spend.reserve("team|a", 0.004, session="run-1")
    assert refused.value.budget == "session:run-1"
    await spend.settle(hold, 0.002)
    again = await spend.reserve("team|a", 0.008, session="run-1")  # 0.002 spent + 0.008 held fits 0.01
    await spend.release(again)
    totals = await spend.totals()
    assert totals["open_reservations"] == 0 and totals["reserved_usd"] == 0
    held = await spend.link.client.hgetall(spend.link.key("spend", "held"))
    assert held == {}
    await spend.close()
    await spend.link.close()
