"""Bounded concurrency and retries through the real gateway (issue 3's end-to-end tests)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import openai
import psutil
import pytest

from agentdeck.sim import MockServer
from deck_support import ADMIN_TOKEN, GATEWAY_KEY, serve_process, write_serve_config

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def test_10000_callers_never_exceed_200_slots(tmp_path: Path, mock: MockServer) -> None:
    mock.update(latency_ms=150.0)
    cfg = tmp_path / "c.toml"
    write_serve_config(cfg, tmp_path / "data", mock.url, "[providers.openai.limits]\n"
                       "rps = 5000\nmax_rps = 5000\nslots = 200\nmax_slots = 200\nmax_queue_wait_s = 1.5")
    proc, url = serve_process(cfg)
    gw_ps = psutil.Process(proc.pid)
    rss_before = gw_ps.memory_info().rss
    body = b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 16}'
    statuses: list[int] = []
    retry_ok: list[bool] = []
    rss_peak = rss_before

    async def one(s: aiohttp.ClientSession) -> None:
        async with s.post(url + "/v1/chat/completions", data=body,
                          headers={"Authorization": f"Bearer {GATEWAY_KEY}", "content-type": "application/json"}) as r:
            await r.read()
            statuses.append(r.status)
            if r.status == 429:
                ms, s_ = r.headers.get("retry-after-ms"), r.headers.get("retry-after")
                retry_ok.append(ms is not None and s_ is not None and 0 < float(ms) <= 60_000 and 0 < float(s_) <= 60)

    async def sample_rss() -> None:
        nonlocal rss_peak
        while True:
            rss_peak = max(rss_peak, gw_ps.memory_info().rss)
            await asyncio.sleep(0.2)

    async def main() -> None:
        conn = aiohttp.TCPConnector(limit=0)
        timeout = aiohttp.ClientTimeout(total=120)
        async with aiohttp.ClientSession(connector=conn, timeout=timeout) as s:
            sampler = asyncio.ensure_future(sample_rss())
            await asyncio.gather(*(one(s) for _ in range(10_000)))
            sampler.cancel()

    try:
        asyncio.run(main())
        st = httpx.get(url + "/admin/status", headers=ADMIN).json()
    finally:
        proc.terminate()
        proc.wait(20)
    stats = mock.stats()
    assert len(statuses) == 10_000
    assert set(statuses) <= {200, 429}, f"unexpected statuses {set(statuses)}"
    assert statuses.count(200) >= 200
    assert all(retry_ok) and len(retry_ok) == statuses.count(429)
    assert stats["max_in_flight"] <= 200, f"provider saw {stats['max_in_flight']} in flight"
    assert st["providers"]["openai"]["in_flight"] == 0
    assert (rss_peak - rss_before) / 1e6 < 250, f"gateway grew {(rss_peak - rss_before) / 1e6:.0f} MB"


def test_retries_whitelist_and_retry_after(gateway: Any, mock: MockServer) -> None:
    o = openai.OpenAI(base_url=gateway.url + "/v1", api_key=GATEWAY_KEY, max_retries=0)
    # 503 is retried by the gateway (twice by default), 400/404-class answers are not.
    mock.reset()
    with pytest.raises(openai.InternalServerError):
        o.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "[mock:error=503]"}])
    assert mock.stats()["requests"] == 3
    for code, exc in ((400, openai.BadRequestError), (422, openai.UnprocessableEntityError), (404, openai.NotFoundError)):
        mock.reset()
        with pytest.raises(exc):
            o.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": f"[mock:error={code}]"}])
        assert mock.stats()["requests"] == 1, f"{code} must not be retried"
    # A provider 429 with retry-after is retried after the hinted wait, inside the request's one slot.
    mock.reset()
    mock.update(rate_429=1.0)
    t0 = time.monotonic()
    with pytest.raises(openai.RateLimitError) as e:
        o.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}])
    assert mock.stats()["requests"] == 3
    assert e.value.response.headers.get("retry-after")
    st = httpx.get(gateway.url + "/admin/status", headers=ADMIN).json()["providers"]["openai"]
    assert st["rate_limited_total"] == 3 and st["in_flight"] == 0
    assert st["rps_limit"] < 50, "a 429 storm must cut the limit"
    assert time.monotonic() - t0 < 10


def test_fallback_when_breaker_opens(make_gateway: Any, mock: MockServer) -> None:
    with MockServer() as dead:
        dead.update(rate_5xx=1.0)
        gw = make_gateway(providers={
            "openai": {"protocol": "openai", "base_url": dead.url, "api_key": "sk-p-1", "models": ["gpt-4o-mini"],
                        "fallback": "backup", "breaker": {"failure_threshold": 2, "open_for_s": 30},
                        "retry": {"max_retries": 1, "backoff_base_s": 0.01, "backoff_max_s": 0.02}},
            "backup": {"protocol": "openai", "base_url": mock.url, "api_key": "sk-b-2", "models": ["gpt-4o-mini"]},
        }, routing={"tiers": {"fast": {"openai": "gpt-4o-mini"}, "balanced": {"openai": "gpt-4o-mini"},
                              "smart": {"openai": "gpt-4o-mini"}}})
        o = openai.OpenAI(base_url=gw.url + "/v1", api_key=GATEWAY_KEY, max_retries=0)
        for text in ("x", "y"):  # the primary keeps failing: its breaker opens and calls move to the backup
            try:
                o.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": text}])
            except openai.InternalServerError:
                pass
        r = o.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "z"}])
        assert r.parse().choices[0].message.content
        assert dead.stats()["requests"] == 2, "an open breaker must stop calls to the failing provider"
        time.sleep(0.4)
        rows = httpx.get(gw.url + "/admin/requests?limit=5", headers=ADMIN).json()["requests"]
        assert rows[0]["provider"] == "backup" and rows[0]["fallback_from"] == "openai" and rows[0]["status"] == 200
        st = httpx.get(gw.url + "/admin/status", headers=ADMIN).json()["providers"]
        assert st["openai"]["breaker"] in ("open", "half_open") and st["openai"]["in_flight"] == 0


def test_slots_return_after_upstream_timeouts(make_gateway: Any, mock: MockServer) -> None:
    gw = make_gateway(gateway={"read_timeout_s": 0.3},
                      providers={"openai": {"protocol": "openai", "base_url": mock.url, "api_key": "sk-x",
                                            "models": ["gpt-4o-mini"], "retry": {"max_retries": 0}}})
    mock.update(latency_ms=2000.0)
    o = openai.OpenAI(base_url=gw.url + "/v1", api_key=GATEWAY_KEY, max_retries=0)
    with pytest.raises(openai.APIStatusError) as e:
        o.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}])
    assert e.value.status_code == 502
    st = httpx.get(gw.url + "/admin/status", headers=ADMIN).json()
    assert st["providers"]["openai"]["in_flight"] == 0 and st["spend"]["open_reservations"] == 0
