"""Control endpoints, in-flight accounting, live settings, determinism."""

from __future__ import annotations

import asyncio
import hashlib
import time

import httpx
import pytest

from agentdeck.sim import MockServer
from agentdeck.sim.mock import format_go_duration, parse_magic

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


def test_stats_reset_and_redaction(mock: MockServer) -> None:
    httpx.post(mock.url + "/v1/chat/completions", json=CHAT, headers={"Authorization": "Bearer sk-secret-1"})
    httpx.post(mock.url + "/v1/messages", json={**CHAT, "max_tokens": 5},
               headers={"x-api-key": "sk-ant-secret-2", "anthropic-version": "2023-06-01", "X-Custom": "Yes"})
    httpx.post(mock.url + "/v1/messages", json=CHAT, headers={"x-api-key": "sk-ant-secret-2"})  # 400: no max_tokens
    st = httpx.get(mock.url + "/_mock/stats").json()
    assert st["requests"] == 3
    assert st["by_path"] == {"/v1/chat/completions": 1, "/v1/messages": 2}
    assert st["status_counts"] == {"200": 2, "400": 1}
    assert st["in_flight"] == 0 and st["max_in_flight"] == 1
    assert st["last_headers"]["x-api-key"] == f"<redacted-len-{len('sk-ant-secret-2')}>"
    assert "sk-ant-secret-2" not in str(st) and "sk-secret-1" not in str(st)
    assert sorted(st["api_keys_seen"]) == sorted(
        hashlib.sha256(k.encode()).hexdigest()[:16] for k in ("sk-secret-1", "sk-ant-secret-2"))
    httpx.post(mock.url + "/v1/messages", json={**CHAT, "max_tokens": 5},
               headers={"x-api-key": "k", "anthropic-version": "2023-06-01", "X-Custom": "Yes"})
    assert httpx.get(mock.url + "/_mock/stats").json()["last_headers"]["x-custom"] == "Yes"
    assert httpx.post(mock.url + "/_mock/reset").json() == {"ok": True}
    st = httpx.get(mock.url + "/_mock/stats").json()
    assert (st["requests"], st["by_path"], st["status_counts"], st["api_keys_seen"]) == (0, {}, {}, [])


def test_settings_endpoint(mock: MockServer) -> None:
    r = httpx.post(mock.url + "/_mock/settings", json={"latency_ms": 150, "output_tokens": 3})
    assert r.status_code == 200 and r.json()["latency_ms"] == 150 and r.json()["output_tokens"] == 3
    t = time.perf_counter()
    r = httpx.post(mock.url + "/v1/chat/completions", json=CHAT, headers={"Authorization": "Bearer k"})
    assert time.perf_counter() - t >= 0.15
    assert r.json()["usage"]["completion_tokens"] == 3
    bad = httpx.post(mock.url + "/_mock/settings", json={"rate_429": 1.5})
    assert bad.status_code == 400 and "rate_429" in bad.json()["error"]
    bad = httpx.post(mock.url + "/_mock/settings", json={"nope": 1})
    assert bad.status_code == 400 and "nope" in bad.json()["error"]
    assert httpx.get(mock.url + "/_mock/settings").json()["rate_429"] == 0.0  # a bad update changed nothing
    assert httpx.post(mock.url + "/_mock/settings", content=b"[1]").status_code == 400


async def test_max_in_flight_under_concurrency(mock: MockServer) -> None:
    mock.update(latency_ms=300)
    async with httpx.AsyncClient(base_url=mock.url, headers={"Authorization": "Bearer k"}, timeout=10) as c:
        async def one() -> int:
            return (await c.post("/v1/chat/completions", json=CHAT)).status_code

        tasks = [asyncio.create_task(one()) for _ in range(7)]
        await asyncio.sleep(0.15)
        mid = (await c.get("/_mock/stats")).json()
        assert mid["in_flight"] == 7
        assert await asyncio.gather(*tasks) == [200] * 7
        st = (await c.get("/_mock/stats")).json()
    assert st["max_in_flight"] == 7 and st["in_flight"] == 0


async def test_client_disconnect_frees_in_flight(mock: MockServer) -> None:
    """A caller that gives up (timeout, cancel) stops counting at once, as at a real provider."""
    async with httpx.AsyncClient(base_url=mock.url, headers={"Authorization": "Bearer k"}) as c:
        with pytest.raises(httpx.ReadTimeout):
            await c.post("/v1/chat/completions", json={**CHAT, "messages": [{"role": "user", "content": "[mock:slow=5000]"}]},
                         timeout=0.2)
        mock.update(token_ms=200)
        async with c.stream("POST", "/v1/chat/completions", json={**CHAT, "stream": True}) as r:
            async for _ in r.aiter_bytes():
                break  # leave mid-stream: the connection is closed, 24 x 200 ms of tokens never sent
        deadline = time.monotonic() + 2
        while mock.stats()["in_flight"] and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
    st = mock.stats()
    assert st["in_flight"] == 0 and st["status_counts"].get("499") == 2


def test_token_ms_paces_streams(mock: MockServer) -> None:
    mock.update(token_ms=40, output_tokens=6)
    t = time.perf_counter()
    stamps: list[float] = []
    with httpx.stream("POST", mock.url + "/v1/chat/completions", json={**CHAT, "stream": True},
                      headers={"Authorization": "Bearer k"}) as r:
        for line in r.iter_lines():
            if '"content":"' in line and '"content":""' not in line:
                stamps.append(time.perf_counter() - t)
    assert len(stamps) == 6
    assert stamps[-1] >= 0.2 and stamps[-1] - stamps[0] >= 0.15


def test_injected_errors_reproducible_by_seed(mock: MockServer) -> None:
    def run() -> list[int]:
        with httpx.Client(base_url=mock.url, headers={"Authorization": "Bearer k"}) as c:
            return [c.post("/v1/chat/completions", json=CHAT).status_code for _ in range(20)]

    mock.update(rate_429=0.3, rate_5xx=0.2, seed=11)
    a = run()
    mock.update(seed=11)
    assert run() == a
    assert {200, 429, 500} <= set(a)


def test_unknown_path_is_provider_404(mock: MockServer) -> None:
    r = httpx.post(mock.url + "/v1/embeddings", json=CHAT, headers={"Authorization": "Bearer k"})
    assert r.status_code == 404 and "error" in r.json()
    r = httpx.get(mock.url + "/v1/messages", headers={"x-api-key": "k", "anthropic-version": "2023-06-01"})
    assert r.status_code == 405 and r.json()["type"] == "error"


def test_go_durations() -> None:
    assert format_go_duration(0) == "0s"
    assert format_go_duration(0.012) == "12ms"
    assert format_go_duration(1) == "1s"
    assert format_go_duration(1.5) == "1.5s"
    assert format_go_duration(360) == "6m0s"
    assert format_go_duration(23 * 3600 + 47 * 60 + 36.648) == "23h47m36.648s"


def test_parse_magic() -> None:
    m = parse_magic("please [mock:tokens=5] [mock:slow=20] [mock:error=503] [mock:truncate] [mock:bogus] [mock:tokens=x]")
    assert (m.tokens, m.slow_ms, m.error, m.truncate) == (5, 20.0, 503, True)
    assert parse_magic("nothing here").error is None


def test_mock_server_leaves_signal_handlers_alone() -> None:
    import signal

    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    with MockServer(output_tokens=2) as m:
        assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before
        r = httpx.post(m.url + "/v1/chat/completions", json=CHAT, headers={"Authorization": "Bearer k"})
        assert r.json()["usage"]["completion_tokens"] == 2
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before
