"""Shared provider limits against a real redis-server: several limiters (as several processes would) share one."""

from __future__ import annotations

import asyncio
from pathlib import Path

from cluster_support import RedisServer, make_cluster_config

from agentdeck.bus import Bus, LimitChanged
from agentdeck.config import LimitsConfig
from agentdeck.limits import ProviderLimiter, Throttled
from agentdeck.state.redis_limits import RedisLimit, shared_limits
from agentdeck.state.redis_link import RedisLink


def _limits(tmp_path: Path, url: str, n: int, bus: Bus | None = None, **limits: object) -> list[RedisLimit]:
    cfg = make_cluster_config(tmp_path, url, lease_s=limits.pop("lease_s", 30.0))
    out = []
    for _ in range(n):
        b = bus or Bus()
        lim = ProviderLimiter("p", LimitsConfig(**limits), b)
        out.append(shared_limits(RedisLink(cfg.cluster, b), {"p": lim}, b)[0]["p"])
    return out


async def test_three_limiters_never_hold_more_than_the_shared_slots(tmp_path: Path, redis_server: RedisServer) -> None:
    parts = _limits(tmp_path, redis_server.url, 3, slots=20, max_slots=20, rps=10_000, max_rps=10_000,
                    max_queue_wait_s=30)
    inside = peak = 0

    async def call(i: int) -> None:
        nonlocal inside, peak
        async with parts[i % 3].slot():
            inside += 1
            peak = max(peak, inside)
            await asyncio.sleep(0.005)
            inside -= 1

    await asyncio.gather(*(call(i) for i in range(600)))
    assert peak == 20  # used to the full shared limit, never past it
    assert all(not p._held for p in parts)
    for p in parts:
        p.close()
        await p.link.close()


async def test_a_killed_holders_slots_return_after_the_lease(tmp_path: Path, redis_server: RedisServer) -> None:
    dead, alive = _limits(tmp_path, redis_server.url, 2, slots=2, max_slots=2, max_queue_wait_s=0.0, lease_s=0.3)
    held = [dead.slot(), dead.slot()]
    for s in held:
        await s.__aenter__()
    dead.close()  # stops renewing, as a killed process would
    try:
        async with alive.slot():
            raise AssertionError("got a slot past the shared limit")
    except Throttled:
        pass
    for _ in range(100):
        await asyncio.sleep(0.05)
        try:
            async with alive.slot():
                break
        except Throttled:
            continue
    else:
        raise AssertionError("the dead holder's slots never came back")
    alive.close()
    await alive.link.close()
    await dead.link.close()


async def test_a_burst_of_429s_on_three_processes_cuts_the_shared_limit_once(tmp_path: Path,
                                                                             redis_server: RedisServer) -> None:
    bus = Bus()
    sub = bus.subscribe("t", types={"limit"})
    parts = _limits(tmp_path, redis_server.url, 3, bus, rps=100, slots=50, congestion_window_s=5.0)
    for p in parts:
        await p.pace()
    for _ in range(5):
        for p in parts:
            p.observe(429)
    await asyncio.sleep(0.2)
    assert sum(p.cuts for p in parts) == 1
    assert {(p.rps, p.slots) for p in parts} == {(70.0, 35)}
    assert any(isinstance(e, LimitChanged) and e.rps_limit == 70.0 for e in sub.drain())
    for p in parts:
        p.close()
        await p.link.close()


async def test_pacing_spaces_the_cluster_at_the_shared_rate(tmp_path: Path, redis_server: RedisServer) -> None:
    parts = _limits(tmp_path, redis_server.url, 3, rps=50, max_rps=50)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    await asyncio.gather(*(parts[i % 3].pace() for i in range(31)))
    took = loop.time() - t0
    # 31 attempts at 50/s from one bucket (one token to start with): 0.6 s, whichever process asks.
    assert took >= 0.55
    for p in parts:
        p.close()
        await p.link.close()
