"""AIMD shared by three serve processes against a provider capped at 100 req/s: one limit, not three."""

from __future__ import annotations

import asyncio
import statistics
import time
from pathlib import Path
from typing import Any

import aiohttp
import redis.asyncio as aioredis
from cluster_support import RedisServer, stop_serve, write_cluster_serve_config
from deck_support import GATEWAY_KEY, serve_process

LIMITS = """
[providers.openai.limits]
rps = 200
max_rps = 500
slots = 100
max_slots = 500
increase = 5
increase_every_s = 0.5
congestion_window_s = 1.0
decrease = 0.7
max_queue_wait_s = 30
"""


async def test_three_processes_settle_on_the_providers_100_rps_with_few_429s(
        tmp_path: Path, redis_server: RedisServer, mock: Any) -> None:
    mock.update(latency_ms=20.0, rps_limit=100.0)
    procs, urls = [], []
    samples: list[float] = []
    try:
        for i in range(3):
            cfg = write_cluster_serve_config(tmp_path / f"gw{i}.toml", tmp_path / f"gw{i}", mock.url, redis_server.url,
                                             extra=LIMITS)
            p, url = serve_process(cfg)
            procs.append(p)
            urls.append(url)
        mock.reset()
        body = {"model": "house-mini", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]}
        headers = {"authorization": f"Bearer {GATEWAY_KEY}"}
        statuses: list[int] = []
        half: dict[int, int] = {}
        end = time.monotonic() + 12.0
        r = aioredis.Redis.from_url(redis_server.url)
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
            async def caller(i: int) -> None:
                while time.monotonic() < end:
                    async with http.post(urls[i % 3] + "/v1/chat/completions", json=body, headers=headers) as resp:
                        await resp.read()
                        statuses.append(resp.status)

            async def sampler() -> None:
                await asyncio.sleep(6.0)  # the second half: after the first cuts from 200
                half.update({int(k): v for k, v in mock.stats()["status_counts"].items()})
                while time.monotonic() < end:
                    samples.append(float(await r.hget("agentdeck:t:lim:openai:aimd", "rps") or 0))
                    await asyncio.sleep(0.2)

            await asyncio.gather(sampler(), *(caller(i) for i in range(90)))
        await r.aclose()
        stats = mock.stats()
    finally:
        errs = [stop_serve(p) for p in procs]
    assert "Traceback" not in "".join(errs)
    counts = {int(k): v for k, v in stats["status_counts"].items()}
    upstream = sum(counts.values())
    late = {k: v - half.get(k, 0) for k, v in counts.items()}
    share_429 = counts.get(429, 0) / upstream
    late_429 = late.get(429, 0) / max(1, sum(late.values()))
    median = statistics.median(samples)
    print(f"\nshared rps over the last 6 s: median {median:.1f}, min {min(samples):.1f}, max {max(samples):.1f}; "
          f"upstream {upstream} requests in 12 s ({sum(late.values())} in the last 6 s); 429s: {share_429:.1%} "
          f"overall (the cuts from 200 included), {late_429:.1%} in the last 6 s; client saw "
          f"{statuses.count(200)} x 200 of {len(statuses)}")
    assert 70.0 <= median <= 130.0  # one shared limit near the provider's 100, not three
    assert late_429 < 0.05  # once settled
    assert statuses.count(200) >= 0.9 * len(statuses)
