"""The pipelined connection the cluster's scripts share, against a real redis-server: a Redis that hangs
(SIGSTOP: the socket stays open, nothing answers) is "down" after op_timeout_s, never a hang; settles sent
without waiting while it hangs are kept and written once it answers again; commands keep their order."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from typing import Any

import pytest
from cluster_support import RedisServer, make_cluster_config

from agentdeck.budget.ledger import Ledger
from agentdeck.bus import Bus
from agentdeck.state.redis_link import ClusterUnavailable, RedisLink
from agentdeck.state.redis_spend import RedisSpend


def _spend(tmp_path: Path, url: str, **cluster: Any) -> RedisSpend:
    cfg = make_cluster_config(tmp_path, url, budget={"hourly_usd": 1.0, "daily_usd": 1.0}, **cluster)
    bus = Bus()
    return RedisSpend(RedisLink(cfg.cluster, bus), Ledger(cfg, bus))


async def test_a_hung_redis_is_down_after_the_op_timeout_and_settles_wait_for_it(tmp_path: Path,
                                                                               redis_server: RedisServer) -> None:
    spend = _spend(tmp_path, redis_server.url, op_timeout_s=0.3, lease_s=1.0)
    assert redis_server.proc is not None
    held = [await spend.reserve("dev", 0.01) for _ in range(3)]
    os.kill(redis_server.proc.pid, signal.SIGSTOP)
    try:
        for h in held:
            await spend.settle(h, 0.004)  # sent at once, without waiting: Redis never answers them
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        with pytest.raises(ClusterUnavailable) as down:
            await asyncio.wait_for(spend.reserve("dev", 0.01), 10)  # bounded by op_timeout_s, not by this
        waited = loop.time() - t0
        assert "no reply within 0.3s" in down.value.message
        assert waited < 5, waited  # far below the test's own bound: the watchdog decided, not a hang
        assert not spend.link.up and spend.pending_settlements == 3  # the settles are kept, not lost
    finally:
        os.kill(redis_server.proc.pid, signal.SIGCONT)
    totals: dict[str, Any] = {}
    for _ in range(100):
        if spend.link.up and spend.pending_settlements == 0:
            totals = await spend.totals()
            if totals["open_reservations"] == 0:
                break
        await asyncio.sleep(0.05)
    # Redis ran what was in its socket when it woke up (the settles, and the hold the refused call asked for),
    # and the process wrote its queued settles again: each counted once; the orphan hold went with its lease.
    assert totals["hour_usd"] == pytest.approx(0.012, abs=1e-9)
    assert totals["open_reservations"] == 0 and totals["reserved_usd"] == 0
    await spend.close()
    await spend.link.close()


async def test_commands_sent_without_waiting_are_applied_before_later_ones(tmp_path: Path,
                                                                         redis_server: RedisServer) -> None:
    spend = _spend(tmp_path, redis_server.url)
    for _ in range(50):  # settle (not awaited by Redis) then read at once, on the same connection: always seen
        hold = await spend.reserve("dev", 0.001)
        await spend.settle(hold, 0.001)
        assert (await spend.totals())["open_reservations"] == 0
    assert (await spend.totals())["hour_usd"] == pytest.approx(0.05)
    await spend.close()
    await spend.link.close()


async def test_under_traffic_the_stop_rides_on_the_hold_and_a_stop_elsewhere_still_refuses(
        tmp_path: Path, redis_server: RedisServer) -> None:
    from agentdeck.budget.killswitch import KillSwitch
    from agentdeck.state.redis_stop import RedisStop

    parts = []
    for _ in range(2):  # two processes: each its own link, ledger, kill switch
        cfg = make_cluster_config(tmp_path, redis_server.url, budget={"hourly_usd": 100.0, "daily_usd": 100.0})
        bus = Bus()
        link = RedisLink(cfg.cluster, bus)
        parts.append((RedisSpend(link, Ledger(cfg, bus)), RedisStop(link, KillSwitch(bus), bus)))
    (spend, stop), (_, other_stop) = parts
    await stop.start()
    await other_stop.start()
    loop = asyncio.get_running_loop()
    end = loop.time() + 0.6
    calls = 0
    reads_before = stop.reads
    while loop.time() < end:  # admission then hold, as the gateway does, for 0.6 s
        assert await stop.check("dev") is None
        hold = await spend.reserve("dev", 0.0001)
        await spend.settle(hold, 0.0)
        calls += 1
    # Each hold said "the stop hash has not changed since your last read": no read every 50 ms (12 in 0.6 s).
    assert stop.reads - reads_before <= 1, (stop.reads - reads_before, calls)
    # A stop taken elsewhere changes the version: the next hold notices even if no message arrived.
    await other_stop.killswitch.stop("incident", actor="test")
    refused = None
    for _ in range(100):
        refused = await stop.check("dev")
        if refused is not None:
            break
        hold = await spend.reserve("dev", 0.0001)
        await spend.settle(hold, 0.0)
        await asyncio.sleep(0.005)
    assert refused is not None and "incident" in refused.message
    for s, st in parts:
        await st.close()
        await s.close()
        await s.link.close()
