"""Status sees the cluster: any process answers with every live process and the cluster's spend, stop and limits.

Real `agentdeck serve` processes on one real redis-server; `agentdeck status` run as a
subprocess against one of them.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import openai
from cluster_support import RedisServer, stop_serve, stored_rows, write_cluster_serve_config
from deck_support import ADMIN_TOKEN, GATEWAY_KEY, serve_process

ADMIN = {"authorization": f"Bearer {ADMIN_TOKEN}"}


async def _status(h: httpx.AsyncClient, url: str) -> dict[str, Any]:
    r = await h.get(url + "/admin/status", headers=ADMIN)
    assert r.status_code == 200, r.text
    return r.json()


async def _until(h: httpx.AsyncClient, url: str, cond: Any, what: str, timeout: float = 20.0) -> dict[str, Any]:
    """Read the status of ``url`` until ``cond(status)`` holds (no timing asserted, only that it happens)."""
    end = asyncio.get_running_loop().time() + timeout
    while True:
        st = await _status(h, url)
        if cond(st):
            return st
        if asyncio.get_running_loop().time() > end:
            raise AssertionError(f"{what}: not seen within {timeout} s; last status: {st.get('cluster')}")
        await asyncio.sleep(0.2)


def _pids(st: dict[str, Any]) -> set[int]:
    return {p["pid"] for p in st["cluster"]["processes"]}


async def test_any_process_shows_every_process_the_cluster_spend_and_stop_and_a_dead_one_leaves(
        tmp_path: Path, redis_server: RedisServer, mock: Any) -> None:
    procs: list[Any] = []
    urls: list[str] = []
    try:
        for i in range(3):
            conf = write_cluster_serve_config(tmp_path / f"gw{i}.toml", tmp_path / f"gw{i}", mock.url, redis_server.url)
            p, url = serve_process(conf)
            procs.append(p)
            urls.append(url)
        a, b, c = urls
        pids = {p.pid for p in procs}
        # Calls through A and B only; C serves none and must still show the cluster's spend.
        for url, n in ((a, 3), (b, 2)):
            async with openai.AsyncOpenAI(base_url=url + "/v1", api_key=GATEWAY_KEY, max_retries=0, timeout=10) as cl:
                for _ in range(n):
                    await cl.chat.completions.create(model="house-mini", max_tokens=30,
                                                     messages=[{"role": "user", "content": "hi"}])
        async with httpx.AsyncClient(timeout=10) as h:
            st = await _until(h, c, lambda s: _pids(s) == pids, "all three processes in C's status")
            cluster = st["cluster"]
            assert cluster["backend"] == "redis" and cluster["name"] == "t" and cluster["up"] is True
            assert cluster["redis"] == f"127.0.0.1:{redis_server.port}"
            rows = {p["pid"]: p for p in cluster["processes"]}
            assert {r["address"] for r in rows.values()} == set(urls)
            assert [r["pid"] for r in rows.values() if r["this"]] == [procs[2].pid]  # C answered
            assert all(r["age_s"] < 3.0 and not r["stopped"] and r["started"] > 0 for r in rows.values())
            assert all(r["host"] for r in rows.values())

            # The spend C shows is the cluster's: what A and B stored in their own SQLite files.
            for _ in range(100):
                stored = sum(cost for _, cost in stored_rows(tmp_path / "gw0") + stored_rows(tmp_path / "gw1"))
                if len(stored_rows(tmp_path / "gw0")) == 3 and len(stored_rows(tmp_path / "gw1")) == 2:
                    break
                await asyncio.sleep(0.1)
            st = await _status(h, c)
            assert stored > 0 and stored_rows(tmp_path / "gw2") == []
            assert abs(st["spend"]["hour_usd"] - stored) < 1e-9 and abs(st["spend"]["day_usd"] - stored) < 1e-9
            assert abs(st["keys"]["dev"]["day_usd"] - stored) < 1e-9
            assert st["spend"]["open_reservations"] == 0
            metrics = (await h.get(c + "/metrics")).text  # C's scrape says the cluster's spend too
            day = next(ln for ln in metrics.splitlines() if ln.startswith("agentdeck_spend_day_usd "))
            assert abs(float(day.split()[1]) - stored) < 1e-9
            openai_limits = st["providers"]["openai"]
            assert openai_limits["shared"] is True and openai_limits["cluster_in_flight"] == 0
            assert openai_limits["in_flight"] == 0 and openai_limits["slots_limit"] > 0

            # The console's tick carries the same cluster section, once a second.
            async with h.stream("GET", a + "/admin/events", headers=ADMIN) as ev:
                tick = None
                async for line in ev.aiter_lines():
                    if line.startswith("data: ") and '"type":"tick"' in line:
                        tick = json.loads(line[6:])
                        if tick.get("cluster") and len(tick["cluster"]["processes"]) == 3:
                            break
            assert tick is not None and {p["pid"] for p in tick["cluster"]["processes"]} == pids
            assert abs(tick["day_usd"] - stored) < 1e-9

            # `agentdeck status` against B: the same rows, in plain text (piped), and the cluster's spend.
            env = {**os.environ, "NO_COLOR": "1"}
            out = subprocess.run([sys.executable, "-m", "agentdeck", "status", "--url", b],
                                 capture_output=True, text=True, timeout=30, env={**env, "AGENTDECK_ADMIN_TOKEN": ADMIN_TOKEN})
            assert out.returncode == 0, out.stderr
            assert "cluster  't' on 127.0.0.1:" in out.stdout and "3 processes" in out.stdout
            for p, url in zip(procs, urls):
                assert f":{p.pid}" in out.stdout and url in out.stdout
            assert "(cluster 0)" in out.stdout  # the provider line shows the slots held across the cluster

            # No --url: every local gateway is shown, the cluster's table once (they are one cluster), not three times.
            bare = tmp_path / "bare.toml"
            bare.write_text(f'[gateway]\ndata_dir = "{tmp_path / "bare"}"\n')
            out = subprocess.run([sys.executable, "-m", "agentdeck", "status", "--config", str(bare)],
                                 capture_output=True, text=True, timeout=30, env={**env, "AGENTDECK_ADMIN_TOKEN": ADMIN_TOKEN})
            assert out.returncode == 0, out.stderr
            assert out.stdout.count("LIVE ") == 3 and all(url in out.stdout for url in urls)
            assert out.stdout.count("last seen") == 1 and out.stdout.count("cluster 't' listed above") == 2

            # A stop taken on A: C's status says stopped, and every row says so once it beat again.
            r = await h.post(a + "/admin/stop", headers=ADMIN, json={"reason": "status test"})
            assert r.status_code == 200
            st = await _until(h, c, lambda s: s["stopped"] and all(p["stopped"] for p in s["cluster"]["processes"]),
                              "every process stopped in C's status")
            assert st["stop_reason"] == "status test"
            r = await h.post(b + "/admin/resume", headers=ADMIN, json={})
            assert r.status_code == 200

            # kill -9 A: its row goes after its TTL (it never said goodbye), the others stay.
            os.kill(procs[0].pid, signal.SIGKILL)
            procs[0].wait(5)
            st = await _until(h, c, lambda s: procs[0].pid not in _pids(s), "the killed process's row gone")
            assert _pids(st) == {procs[1].pid, procs[2].pid}

            # A clean shutdown leaves at once (no wait for the TTL): B's row is gone on the next read.
            err_b = stop_serve(procs[1])
            st = await _status(h, c)
            assert _pids(st) == {procs[2].pid}
            assert "Traceback" not in err_b
    finally:
        for p in procs:
            if p.poll() is None:
                err = stop_serve(p)
                assert "Traceback" not in err


async def test_redis_down_status_says_so_and_keeps_the_last_rows(tmp_path: Path, redis_server: RedisServer,
                                                                   mock: Any) -> None:
    procs: list[Any] = []
    try:
        urls = []
        for i in range(2):
            conf = write_cluster_serve_config(tmp_path / f"gw{i}.toml", tmp_path / f"gw{i}", mock.url, redis_server.url)
            p, url = serve_process(conf)
            procs.append(p)
            urls.append(url)
        async with httpx.AsyncClient(timeout=10) as h:
            await _until(h, urls[0], lambda s: len(s["cluster"]["processes"]) == 2, "both processes")
            redis_server.stop()
            st = await _until(h, urls[0], lambda s: s["cluster"]["up"] is False, "Redis marked down in status")
            assert st["cluster"]["error"] and len(st["cluster"]["processes"]) == 2
            out = subprocess.run([sys.executable, "-m", "agentdeck", "status", "--url", urls[0]], capture_output=True,
                                 text=True, timeout=30, env={**os.environ, "AGENTDECK_ADMIN_TOKEN": ADMIN_TOKEN})
            assert "REDIS NOT ANSWERING" in out.stdout and "Traceback" not in out.stderr
            redis_server.start()
            await _until(h, urls[0], lambda s: s["cluster"]["up"] is True and len(s["cluster"]["processes"]) == 2,
                         "both processes back once Redis is")
    finally:
        errs = [stop_serve(p) for p in procs]
    assert "Traceback" not in "".join(errs)


async def test_a_local_gateway_status_has_no_cluster_section(tmp_path: Path, mock: Any) -> None:
    from deck_support import write_serve_config

    p, url = serve_process(write_serve_config(tmp_path / "gw.toml", tmp_path / "gw", mock.url))
    try:
        async with httpx.AsyncClient(timeout=10) as h:
            st = await _status(h, url)
        assert "cluster" not in st
        assert "cluster_in_flight" not in st["providers"]["openai"]
    finally:
        assert "Traceback" not in stop_serve(p)
