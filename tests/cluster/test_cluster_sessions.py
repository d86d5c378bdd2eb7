"""Sessions from `agentdeck run` against one process of a cluster work on every process; a stop taken before
any call reaches the cluster (the backend starts with the gateway, not at its first call)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import openai
import redis
from cluster_support import RedisServer, stop_serve, write_cluster_serve_config
from deck_support import ADMIN_TOKEN, GATEWAY_KEY, serve_process

from agentdeck.store import db_path

# The command `agentdeck run` starts: one call per URL given, with the session key run put in its environment.
CHILD = r"""
import json, os, sys
from pathlib import Path
import openai

out, served_by = [], set()
for url in sys.argv[2:]:
    # A client per call: a new connection each time (spread over the workers of `serve --workers`).
    with openai.OpenAI(base_url=url + "/v1", api_key=os.environ["OPENAI_API_KEY"], max_retries=0, timeout=10) as c:
        try:
            raw = c.chat.completions.with_raw_response.create(
                model="house-mini", max_tokens=20, messages=[{"role": "user", "content": "hi"}])
            served_by.add(raw.headers["x-agentdeck-request-id"][:12])
            out.append("ok")
        except openai.APIStatusError as e:
            out.append(f"{e.status_code}:{(e.body or {}).get('code')}")
Path(sys.argv[1]).write_text(os.environ["OPENAI_API_KEY"])  # for the test to look for it where it must not be
print(json.dumps({"session": os.environ["AGENTDECK_SESSION"], "results": out, "processes": len(served_by)}))
"""


def _start(tmp_path: Path, n: int, mock: Any, redis_server: RedisServer) -> tuple[list[Any], list[str]]:
    procs, urls = [], []
    for i in range(n):
        cfg = write_cluster_serve_config(tmp_path / f"gw{i}.toml", tmp_path / f"gw{i}", mock.url, redis_server.url)
        p, url = serve_process(cfg)
        procs.append(p)
        urls.append(url)
    return procs, urls


def _agentdeck_run(tmp_path: Path, via: str, calls: list[str], *flags: str,
                   config: str = "gw0.toml") -> tuple[dict[str, Any], str]:
    """`agentdeck run` against ``via``; the child calls each of ``calls``. (its JSON, the session secret)."""
    child, secret_file = tmp_path / "child.py", tmp_path / "secret.txt"
    child.write_text(CHILD)
    r = subprocess.run([sys.executable, "-m", "agentdeck", "run", "--config", str(tmp_path / config), "--url", via,
                        *flags, "--", sys.executable, str(child), str(secret_file), *calls],
                       capture_output=True, text=True, timeout=90, env={**os.environ})
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    secret = secret_file.read_text()
    secret_file.unlink()
    return json.loads(r.stdout.strip().splitlines()[-1]), secret


def _redis_dump(url: str) -> bytes:
    """Every key and every value of every hash in the test's Redis, as bytes."""
    c = redis.Redis.from_url(url)
    try:
        out = b""
        for k in c.scan_iter():
            out += k
            kind = c.type(k)
            if kind == b"hash":
                for f, v in c.hgetall(k).items():
                    out += f + v
            elif kind == b"string":
                out += c.get(k) or b""
        return out
    finally:
        c.close()


def _db_bytes(data_dir: Path) -> bytes:
    conn = sqlite3.connect(db_path(data_dir))
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    return b"".join(p.read_bytes() for p in data_dir.rglob("*") if p.is_file())


def _call(url: str, key: str) -> str:
    with openai.OpenAI(base_url=url + "/v1", api_key=key, max_retries=0, timeout=10) as c:
        try:
            c.chat.completions.create(model="house-mini", max_tokens=20, messages=[{"role": "user", "content": "hi"}])
            return "ok"
        except openai.APIStatusError as e:
            return f"{e.status_code}:{(e.body or {}).get('code')}"


def test_a_session_made_on_one_process_works_on_the_others_and_is_counted_once(
        tmp_path: Path, redis_server: RedisServer, mock: Any) -> None:
    procs, urls = _start(tmp_path, 3, mock, redis_server)
    a, b, c = urls
    try:
        # Made on A, used on B and C, with a limit of 3 calls counted across the cluster.
        got, secret = _agentdeck_run(tmp_path, a, [b, c, b, a], "--key", "dev", "--max-requests", "3")
        assert got["results"] == ["ok", "ok", "ok", "403:session_request_limit"], got
        session = got["session"]
        # A session key nobody issued is refused as before, on a process that asks Redis and on one that does not.
        forged = "adk-s-" + "x" * 32
        assert _call(b, forged) == "401:invalid_api_key"
        assert _call(c, "not-a-key-at-all") == "401:invalid_api_key"
        assert _call(b, GATEWAY_KEY) == "ok"  # configured keys still work everywhere

        # A session's budget holds on a process that learnt it from Redis.
        poor, poor_secret = _agentdeck_run(tmp_path, a, [c], "--key", "dev", "--budget", "0.000001")
        assert poor["results"] == ["403:budget_exceeded"], poor
        assert poor["session"] != session  # one name per session across the cluster

        # The processes that learnt the session show it in their status; no secret is in Redis.
        with httpx.Client(timeout=10) as h:
            st = h.get(b + "/admin/status", headers={"authorization": f"Bearer {ADMIN_TOKEN}"}).json()
        assert st["sessions"][session]["max_requests"] == 3 and st["sessions"][session]["requests"] == 3
        dump = _redis_dump(redis_server.url)
        assert session.encode() in dump
        for s in (secret, poor_secret):
            assert s.startswith("adk-s-") and s.encode() not in dump
    finally:
        errs = [stop_serve(p) for p in procs]
    assert "Traceback" not in "".join(errs)
    for i, err in enumerate(errs):
        assert secret not in err and poor_secret not in err
        stored = _db_bytes(tmp_path / f"gw{i}")
        assert secret.encode() not in stored and poor_secret.encode() not in stored


def test_a_stop_taken_before_any_call_reaches_the_cluster(tmp_path: Path, redis_server: RedisServer,
                                                          mock: Any) -> None:
    procs, urls = _start(tmp_path, 2, mock, redis_server)
    a, b = urls
    try:
        with httpx.Client(timeout=10) as h:
            # A has served nothing: its backend must already be following and sending the stop.
            r = h.post(a + "/admin/stop", json={"reason": "before any call", "actor": "cli"},
                       headers={"authorization": f"Bearer {ADMIN_TOKEN}"})
            assert r.status_code == 200
        deadline = time.monotonic() + 10
        answer = _call(b, GATEWAY_KEY)
        while answer != "403:agentdeck_stopped" and time.monotonic() < deadline:
            answer = _call(b, GATEWAY_KEY)
        assert answer == "403:agentdeck_stopped"
        assert b"before any call" in _redis_dump(redis_server.url)
    finally:
        errs = [stop_serve(p) for p in procs]
    assert "Traceback" not in "".join(errs)


def _new_session(url: str, name: str) -> httpx.Response:
    """``POST /admin/sessions``, what `agentdeck run` sends."""
    with httpx.Client(timeout=10) as h:
        return h.post(url + "/admin/sessions", json={"name": name, "key": "dev"},
                      headers={"authorization": f"Bearer {ADMIN_TOKEN}"})


def test_with_redis_down_a_session_is_refused_or_local_and_reaches_the_cluster_when_redis_is_back(
        tmp_path: Path, redis_server: RedisServer, mock: Any) -> None:
    # fail (the default): creating a session while Redis is down is a clear 503, nothing half-made.
    strict = write_cluster_serve_config(tmp_path / "strict.toml", tmp_path / "strict", mock.url, redis_server.url)
    # local: the session works on the process that made it, and on the others once Redis is back.
    procs, urls = [], []
    for i in range(2):
        cfg = write_cluster_serve_config(tmp_path / f"gw{i}.toml", tmp_path / f"gw{i}", mock.url, redis_server.url,
                                         cluster_extra='on_redis_down = "local"\n')
        p, url = serve_process(cfg)
        procs.append(p)
        urls.append(url)
    p, strict_url = serve_process(strict)
    procs.append(p)
    a, b = urls
    try:
        assert _call(a, GATEWAY_KEY) == _call(b, GATEWAY_KEY) == _call(strict_url, GATEWAY_KEY) == "ok"
        redis_server.stop()
        r = _new_session(strict_url, "while-down")
        assert r.status_code == 503 and r.headers["retry-after"] == "1"
        err = r.json()["error"]
        assert err["code"] == "cluster_unavailable" and f"127.0.0.1:{redis_server.port}" in err["message"]
        assert "adk-s-" not in r.text

        r = _new_session(a, "made-while-down")
        assert r.status_code == 200, r.text
        name, secret = r.json()["session"], r.json()["key"]
        assert _call(a, secret) == "ok"  # valid where it was made, at once

        redis_server.start()  # an empty Redis: A writes its sessions there again when it sees Redis back
        deadline = time.monotonic() + 15
        answer = _call(b, secret)
        while answer != "ok" and time.monotonic() < deadline:
            time.sleep(0.1)
            answer = _call(b, secret)
        assert answer == "ok"
        with httpx.Client(timeout=10) as h:
            st = h.get(b + "/admin/status", headers={"authorization": f"Bearer {ADMIN_TOKEN}"}).json()
        assert name in st["sessions"]
        assert secret.encode() not in _redis_dump(redis_server.url)
    finally:
        errs = [stop_serve(p) for p in procs]
    assert "Traceback" not in "".join(errs)
    assert all(secret not in e for e in errs)


def test_a_session_made_through_serve_workers_works_on_every_worker(tmp_path: Path, redis_server: RedisServer,
                                                                   mock: Any) -> None:
    """`agentdeck run` against `serve --workers 2`: the session is made by whichever worker took the request,
    and the command's calls land on both."""
    cfg = write_cluster_serve_config(tmp_path / "workers.toml", tmp_path / "data", mock.url, redis_server.url)
    proc = subprocess.Popen([sys.executable, "-m", "agentdeck", "serve", "--config", str(cfg), "--workers", "2",
                             "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert "2 workers" in line, line
    url = line.split("listening on ", 1)[1].split()[0]
    try:
        got, secret = _agentdeck_run(tmp_path, url, [url] * 24, "--key", "dev", config="workers.toml")
        assert got["results"] == ["ok"] * 24, got
        assert got["processes"] == 2, got  # both workers accepted the session
    finally:
        err = stop_serve(proc)
    assert proc.returncode == 0 and "Traceback" not in err and secret not in err, err[-2000:]
