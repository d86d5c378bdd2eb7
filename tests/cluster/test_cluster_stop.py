"""One emergency stop across real `agentdeck serve` processes sharing one Redis."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx
import openai
from cluster_support import RedisServer, stop_serve, write_cluster_serve_config
from deck_support import ADMIN_TOKEN, GATEWAY_KEY, serve_process

from agentdeck.store import db_path


async def _call(client: openai.AsyncOpenAI) -> str:
    try:
        await client.chat.completions.create(model="house-mini", max_tokens=20, messages=[{"role": "user", "content": "hi"}])
        return "ok"
    except openai.PermissionDeniedError as e:
        body: Any = e.body
        return str((body or {}).get("code"))


async def _until(client: openai.AsyncOpenAI, want: str, timeout: float = 10.0) -> float:
    """Call until the answer is ``want``; the seconds it took (measured, reported, not asserted)."""
    t0 = time.perf_counter()
    while await _call(client) != want:
        if time.perf_counter() - t0 > timeout:
            raise AssertionError(f"no {want!r} within {timeout}s")
    return time.perf_counter() - t0


def _stop_rows(data_dir: Path) -> list[tuple[int, str | None]]:
    conn = sqlite3.connect(db_path(data_dir))
    try:
        return [(int(s), a) for s, a in conn.execute("SELECT stopped, actor FROM stop_events ORDER BY seq")]
    finally:
        conn.close()


async def test_a_stop_on_one_process_refuses_on_all_and_a_resume_on_another_frees_all(
        tmp_path: Path, redis_server: RedisServer, mock: Any) -> None:
    procs: list[Any] = []
    clients: list[openai.AsyncOpenAI] = []
    urls: list[str] = []

    def start(i: int) -> None:
        cfg = write_cluster_serve_config(tmp_path / f"gw{i}.toml", tmp_path / f"gw{i}", mock.url, redis_server.url)
        p, url = serve_process(cfg)
        procs.append(p)
        urls.append(url)
        clients.append(openai.AsyncOpenAI(base_url=url + "/v1", api_key=GATEWAY_KEY, max_retries=0, timeout=10))

    admin = {"authorization": f"Bearer {ADMIN_TOKEN}"}
    try:
        for i in range(3):
            start(i)
        assert [await _call(c) for c in clients] == ["ok"] * 3
        a, b, c = clients
        async with httpx.AsyncClient(timeout=10) as h:
            t0 = time.perf_counter()
            r = await h.post(urls[0] + "/admin/stop", json={"reason": "runaway agent", "actor": "cli"}, headers=admin)
            acked = time.perf_counter()
            assert r.status_code == 200
            first_b, first_c = await asyncio.gather(_call(b), _call(c))
            refused_at = time.perf_counter()
            assert (first_b, first_c) == ("agentdeck_stopped", "agentdeck_stopped")
            assert await _call(a) == "agentdeck_stopped"

            start(3)  # started while the cluster is stopped: starts stopped
            d = clients[3]
            assert await _call(d) == "agentdeck_stopped"

            r = await h.post(urls[2] + "/admin/resume", json={"actor": "cli"}, headers=admin)
            assert r.status_code == 200 and r.json()["stopped"] is False
            freed = [await _until(x, "ok") for x in (a, b, c, d)]
            st = (await h.get(urls[1] + "/admin/status", headers=admin)).json()
            assert st["stopped"] is False
        print(f"\nstop on A acked in {(acked - t0) * 1000:.1f} ms; first calls on B and C refused "
              f"{(refused_at - t0) * 1000:.1f} ms after the stop was sent; resume freed all within "
              f"{max(freed) * 1000:.1f} ms")
    finally:
        for x in clients:
            await x.close()
        errs = [stop_serve(p) for p in procs]
    assert "Traceback" not in "".join(errs)
    # Recorded once: the stop in A's log, the resume in C's, nothing in B's or D's.
    assert _stop_rows(tmp_path / "gw0") == [(1, "cli")]
    assert _stop_rows(tmp_path / "gw2") == [(0, "cli")]
    assert _stop_rows(tmp_path / "gw1") == [] and _stop_rows(tmp_path / "gw3") == []


async def test_a_stop_on_one_process_ends_a_stream_open_on_another(tmp_path: Path, redis_server: RedisServer,
                                                                   mock: Any) -> None:
    mock.update(token_ms=50.0)
    procs, urls = [], []
    try:
        for i in range(2):
            cfg = write_cluster_serve_config(tmp_path / f"gw{i}.toml", tmp_path / f"gw{i}", mock.url, redis_server.url)
            p, url = serve_process(cfg)
            procs.append(p)
            urls.append(url)
        a = openai.AsyncOpenAI(base_url=urls[0] + "/v1", api_key=GATEWAY_KEY, max_retries=0, timeout=30)
        b = openai.AsyncOpenAI(base_url=urls[1] + "/v1", api_key=GATEWAY_KEY, max_retries=0, timeout=30)
        assert await _call(a) == "ok"  # A has joined the cluster
        stream = await b.chat.completions.create(model="house-mini", max_tokens=400, stream=True,
                                                 messages=[{"role": "user", "content": "hi [mock:tokens=200]"}])
        chunks = 0
        t0 = time.perf_counter()
        ended = ""
        async with httpx.AsyncClient(timeout=10) as h:
            try:
                async for _ in stream:
                    chunks += 1
                    if chunks == 5:
                        r = await h.post(urls[0] + "/admin/stop", json={"reason": "mid-stream"},
                                         headers={"authorization": f"Bearer {ADMIN_TOKEN}"})
                        assert r.status_code == 200
            except openai.APIError as e:  # the gateway ends the stream with the stop's error event
                ended = str(e)
        assert "emergency stop is active" in ended and "mid-stream" in ended
        took = time.perf_counter() - t0
        await a.close()
        await b.close()
    finally:
        errs = [stop_serve(p) for p in procs]
    assert "Traceback" not in "".join(errs)
    assert chunks < 40  # 200 tokens at 50 ms would take ~10 s; the stop on A ended B's stream
    print(f"\nB's stream ended after {chunks} chunks, {took:.2f} s, by a stop on A")
