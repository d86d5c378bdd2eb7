"""AIMD's idle recovery in cluster mode, against a real redis-server: a shared limit cut by congestion
climbs back to its configured start with no traffic at all, as one process's limiter does."""

from __future__ import annotations

import asyncio
from pathlib import Path

import redis.asyncio as aioredis
from cluster_support import RedisServer, make_cluster_config

from agentdeck.bus import Bus, LimitChanged
from agentdeck.config import LimitsConfig
from agentdeck.limits import ProviderLimiter
from agentdeck.state.redis_limits import RedisLimit, shared_limits
from agentdeck.state.redis_link import RedisLink


def _limits(tmp_path: Path, url: str, n: int, bus: Bus, **limits: object) -> list[RedisLimit]:
    cfg = make_cluster_config(tmp_path, url)
    out = []
    for _ in range(n):
        lim = ProviderLimiter("p", LimitsConfig(**limits), bus)
        out.append(shared_limits(RedisLink(cfg.cluster, bus), {"p": lim}, bus)[0]["p"])
    return out


async def test_a_cut_shared_limit_climbs_back_to_its_start_without_traffic(tmp_path: Path,
                                                                          redis_server: RedisServer) -> None:
    bus = Bus()
    sub = bus.subscribe("t", types={"limit"})
    parts = _limits(tmp_path, redis_server.url, 2, bus, rps=100, max_rps=1000, slots=50, max_slots=500,
                    increase=10, increase_every_s=0.2, congestion_window_s=0.1, decrease=0.7)
    r = aioredis.Redis.from_url(redis_server.url)
    try:
        await parts[0].pace()
        parts[0].observe(429)  # one congestion event, then no call at all
        shared: tuple[float, int] = (0.0, 0)
        for _ in range(100):
            await asyncio.sleep(0.1)
            raw = await r.hmget("agentdeck:t:lim:p:aimd", "rps", "slots")
            shared = (float(raw[0] or 0), int(raw[1] or 0))
            if shared == (100.0, 50) and (parts[0].rps, parts[0].slots) == shared:
                break  # in Redis, and learnt by the process whose timer raised it
        cut = [e for e in sub.drain() if isinstance(e, LimitChanged)]
        assert cut and cut[0].rps_limit == 70.0 and cut[0].slots_limit == 35  # it was cut
        assert shared == (100.0, 50), f"the shared limit stayed at {shared} with no traffic"
        assert parts[0].rps == 100.0 and parts[0].slots == 50
        await asyncio.sleep(0.6)  # three more intervals: it stops at the start, not at max_rps
        raw = await r.hmget("agentdeck:t:lim:p:aimd", "rps", "slots")
        assert (float(raw[0]), int(raw[1])) == (100.0, 50)
        assert parts[0]._recovery is None  # and no timer is left running once back
        # Raised once per interval for the cluster: from 70 to 100 in steps of 10, never a double step.
        steps = [e.rps_limit for e in cut if e.reason == "recovery"]
        assert steps == sorted(steps) and all(b - a <= 10.0 + 1e-9 for a, b in zip([70.0, *steps], steps))
    finally:
        await r.aclose()
        for p in parts:
            p.close()
            await p.link.close()


async def test_a_breaker_opened_by_one_limiter_is_followed_by_another_at_its_next_slot(
        tmp_path: Path, redis_server: RedisServer) -> None:
    bus = Bus()
    alerts = bus.subscribe("a", types={"alert"})
    a, b = _limits(tmp_path, redis_server.url, 2, bus, rps=1000, max_rps=1000)
    try:
        async with b.slot():
            pass
        assert b.breaker.allow()
        for _ in range(5):  # the default failure_threshold
            a.breaker.record_failure()
        assert a.breaker.state == "open"
        await asyncio.sleep(0.05)  # the write goes out without the caller waiting for it
        async with b.slot():  # b's next call learns it from the reply of its slot request
            assert not b.breaker.allow()
        assert b.breaker.state == "open"
        opened = [e for e in alerts.drain() if getattr(e, "kind", "") == "breaker_open"]
        assert len(opened) == 1  # raised by a, followed silently by b
        b.breaker.record_success()  # a success anywhere closes it everywhere
        await asyncio.sleep(0.05)
        async with a.slot():
            assert a.breaker.allow()
        assert a.breaker.state == "closed"
    finally:
        for p in (a, b):
            p.close()
            await p.link.close()
