"""`agentdeck serve --workers N`: refused without shared state; with Redis, N processes behind one port."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import openai
from cluster_support import RedisServer, stop_serve, stored_rows, write_cluster_serve_config
from deck_support import ADMIN_TOKEN, GATEWAY_KEY, write_serve_config


def test_workers_with_the_local_backend_are_refused_in_one_line(tmp_path: Path, mock: Any) -> None:
    cfg = write_serve_config(tmp_path / "gw.toml", tmp_path / "data", mock.url)
    r = subprocess.run([sys.executable, "-m", "agentdeck", "serve", "--config", str(cfg), "--workers", "2"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and r.stdout == ""
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert "--workers 2 needs shared state" in r.stderr and 'backend = "redis"' in r.stderr


async def test_two_workers_share_one_port_one_budget_and_one_stop(tmp_path: Path, redis_server: RedisServer,
                                                                   mock: Any) -> None:
    mock.update(latency_ms=20.0)
    cfg = write_cluster_serve_config(tmp_path / "gw.toml", tmp_path / "data", mock.url, redis_server.url)
    proc = subprocess.Popen([sys.executable, "-m", "agentdeck", "serve", "--config", str(cfg), "--workers", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    m = re.search(r"(http://\S+)", line)
    assert m and "2 workers" in line, line
    url = m.group(1)
    admin = {"authorization": f"Bearer {ADMIN_TOKEN}"}
    try:
        async def one() -> str:
            # A fresh client per call: a new connection each time, so the kernel spreads them over the workers.
            async with openai.AsyncOpenAI(base_url=url + "/v1", api_key=GATEWAY_KEY, max_retries=0) as c:
                raw = await c.chat.completions.with_raw_response.create(
                    model="house-mini", max_tokens=20, messages=[{"role": "user", "content": "hi"}])
                return raw.headers["x-agentdeck-request-id"][:12]

        prefixes = await asyncio.gather(*(one() for _ in range(40)))
        assert len(set(prefixes)) == 2  # both workers served calls
        async with httpx.AsyncClient(timeout=10) as h:
            assert (await h.post(url + "/admin/stop", json={"reason": "drill"}, headers=admin)).status_code == 200

            async def refused() -> bool:
                async with openai.AsyncOpenAI(base_url=url + "/v1", api_key=GATEWAY_KEY, max_retries=0) as c:
                    try:
                        await c.chat.completions.create(model="house-mini", max_tokens=20,
                                                        messages=[{"role": "user", "content": "hi"}])
                    except openai.PermissionDeniedError:
                        return True
                    return False

            assert all(await asyncio.gather(*(refused() for _ in range(20))))  # whichever worker answers
            assert (await h.post(url + "/admin/resume", json={}, headers=admin)).status_code == 200
    finally:
        err = stop_serve(proc)
    assert proc.returncode == 0 and "Traceback" not in err, err[-2000:]
    rows = [r for i in range(2) for r in stored_rows(tmp_path / "data" / "workers" / str(i))]
    assert sum(1 for s, _ in rows if s == 200) == 40
