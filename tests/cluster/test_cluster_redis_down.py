"""Redis stopped mid-run under real `agentdeck serve` processes: fail closed (or the local fallback), settle when back."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import openai
import pytest
from cluster_support import RedisServer, stop_serve, stored_rows, write_cluster_serve_config
from deck_support import GATEWAY_KEY, serve_process

from agentdeck.budget.ledger import Ledger
from agentdeck.bus import Bus
from agentdeck.config import parse_config
from agentdeck.state.redis_link import RedisLink
from agentdeck.state.redis_spend import RedisSpend


async def _call(client: openai.AsyncOpenAI) -> str:
    try:
        await client.chat.completions.create(model="house-mini", max_tokens=20, messages=[{"role": "user", "content": "hi"}])
        return "ok"
    except openai.APIStatusError as e:
        body: Any = e.body
        return f"{e.status_code} {(body or {}).get('code')} {(body or {}).get('message')}"


async def _cluster_hour_usd(url: str) -> float:
    cfg = parse_config({"cluster": {"backend": "redis", "url": url, "name": "t"}}, "<test>", environ={})
    spend = RedisSpend(RedisLink(cfg.cluster, Bus()), Ledger(cfg, Bus()))
    try:
        return float((await spend.totals())["hour_usd"])
    finally:
        await spend.link.close()


async def test_redis_down_fails_closed_and_calls_in_flight_settle_when_it_is_back(
        tmp_path: Path, redis_server: RedisServer, mock: Any) -> None:
    mock.update(latency_ms=600.0)
    procs, clients = [], []
    try:
        for i in range(2):
            cfg = write_cluster_serve_config(tmp_path / f"gw{i}.toml", tmp_path / f"gw{i}", mock.url, redis_server.url)
            p, url = serve_process(cfg)
            procs.append(p)
            clients.append(openai.AsyncOpenAI(base_url=url + "/v1", api_key=GATEWAY_KEY, max_retries=0, timeout=20))
        in_flight = [asyncio.create_task(_call(clients[i % 2])) for i in range(6)]
        await asyncio.sleep(0.3)  # admitted and holding their reservations, waiting on the provider
        redis_server.stop()
        refused = await asyncio.gather(*(_call(c) for c in clients))
        assert await asyncio.gather(*in_flight) == ["ok"] * 6  # calls in flight finish
        for r in refused:
            assert r.startswith("503 cluster_unavailable ") and f"127.0.0.1:{redis_server.port}" in r, r
        mock.update(latency_ms=0.0)
        redis_server.start()
        for c in clients:
            for _ in range(100):
                if await _call(c) == "ok":
                    break
                await asyncio.sleep(0.1)
            else:
                raise AssertionError(f"the gateway did not come back with Redis: {await _call(c)}")
        await asyncio.sleep(0.5)
    finally:
        for c in clients:
            await c.close()
        errs = [stop_serve(p) for p in procs]
    assert "Traceback" not in "".join(errs)
    assert "unreachable" in errs[0] and "503 cluster_unavailable" in errs[0]
    rows = [r for i in range(2) for r in stored_rows(tmp_path / f"gw{i}")]
    # Redis came back empty (no persistence): it holds the 6 settlements queued while it was down and the later calls.
    assert await _cluster_hour_usd(redis_server.url) == pytest.approx(sum(c for s, c in rows if s == 200), abs=1e-9)


async def test_local_fallback_keeps_serving_with_a_p0_on_stderr(tmp_path: Path, redis_server: RedisServer,
                                                                 mock: Any) -> None:
    cfg = write_cluster_serve_config(tmp_path / "gw.toml", tmp_path / "gw", mock.url, redis_server.url,
                                     cluster_extra='on_redis_down = "local"\n')
    p, url = serve_process(cfg)
    client = openai.AsyncOpenAI(base_url=url + "/v1", api_key=GATEWAY_KEY, max_retries=0, timeout=20)
    try:
        assert await _call(client) == "ok"
        redis_server.stop()
        assert [await _call(client) for _ in range(3)] == ["ok"] * 3
    finally:
        await client.close()
        err = stop_serve(p)
    assert "Traceback" not in err
    assert "P0" in err and "unreachable" in err and "not enforced across processes" in err
