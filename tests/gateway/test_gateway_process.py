"""`agentdeck serve` as a real process: clean shutdown, kill -9 safety, config errors, CLI behaviour."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from agentdeck.sim import MockServer
from deck_support import ADMIN_TOKEN, GATEWAY_KEY, serve_process, write_serve_config

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def load(url: str, stop: threading.Event, done: list[float]) -> None:
    """Call the gateway in a loop; record when each call finished (these rows must survive)."""
    with httpx.Client(timeout=10) as c:
        while not stop.is_set():
            try:
                r = c.post(url + "/v1/chat/completions", headers={"Authorization": f"Bearer {GATEWAY_KEY}"},
                           json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}]})
            except httpx.HTTPError:
                return
            if r.status_code == 200:
                done.append(time.time())


def test_sigterm_drains_in_flight_calls_and_flushes_everything(tmp_path: Path, mock: MockServer) -> None:
    mock.update(latency_ms=800.0)
    cfg = write_serve_config(tmp_path / "c.toml", tmp_path / "data", mock.url)
    proc, url = serve_process(cfg)
    results: list[int] = []

    def call() -> None:
        r = httpx.post(url + "/v1/chat/completions", headers={"Authorization": f"Bearer {GATEWAY_KEY}"}, timeout=10,
                       json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}]})
        results.append(r.status_code)

    threads = [threading.Thread(target=call) for _ in range(5)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 5
    while httpx.get(url + "/admin/status", headers=ADMIN).json()["in_flight"] < 5 and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    for t in threads:
        t.join(10)
    assert proc.wait(15) == 0
    assert results == [200] * 5, "calls in flight at SIGTERM must finish"
    assert "stopped" in (proc.stderr.read() if proc.stderr else "")
    rows = sqlite3.connect(tmp_path / "data" / "agentdeck.db").execute("SELECT COUNT(*) FROM requests").fetchone()[0]
    assert rows == 5
    assert not (tmp_path / "data" / "gateway.json").exists()


def test_kill_9_under_load_loses_at_most_the_last_flush(tmp_path: Path, mock: MockServer) -> None:
    cfg = write_serve_config(tmp_path / "c.toml", tmp_path / "data", mock.url)
    proc, url = serve_process(cfg)
    stop, done = threading.Event(), []
    workers = [threading.Thread(target=load, args=(url, stop, done)) for _ in range(4)]
    for w in workers:
        w.start()
    time.sleep(3.0)
    killed_at = time.time()
    os.kill(proc.pid, signal.SIGKILL)
    stop.set()
    for w in workers:
        w.join(10)
    proc.wait(5)
    db = sqlite3.connect(tmp_path / "data" / "agentdeck.db")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    stored = db.execute("SELECT COUNT(*) FROM requests").fetchone()[0]
    must_have = sum(1 for t in done if t < killed_at - 1.0)
    assert len(done) > 50
    assert stored >= must_have, f"{stored} rows stored, but {must_have} calls finished more than 1 s before the kill"


def test_config_errors_name_file_key_and_reason(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[budget]\nhourly_usd = "lots"\n')
    r = subprocess.run([sys.executable, "-m", "agentdeck", "serve", "--config", str(bad)], capture_output=True, text=True)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert str(bad) in r.stderr and "budget.hourly_usd" in r.stderr
    bad.write_text('[gateway]\nprot = 1\n')
    r = subprocess.run([sys.executable, "-m", "agentdeck", "status", "--config", str(bad)], capture_output=True, text=True)
    assert r.returncode != 0 and "gateway.prot: unknown key" in r.stderr
    bad.write_text('[gateway\n')
    r = subprocess.run([sys.executable, "-m", "agentdeck", "serve", "--config", str(bad)], capture_output=True, text=True)
    assert r.returncode != 0 and "invalid TOML" in r.stderr and "Traceback" not in r.stderr
    r = subprocess.run([sys.executable, "-m", "agentdeck", "serve", "--bogus"], capture_output=True, text=True)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    r = subprocess.run([sys.executable, "-m", "agentdeck", "serve", "--config", str(tmp_path / "missing.toml")],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "file not found" in r.stderr


def test_non_loopback_bind_needs_admin_token_and_keys(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[gateway]\nhost = "0.0.0.0"\nport = 0\ndata_dir = "{tmp_path}"\n')
    r = subprocess.run([sys.executable, "-m", "agentdeck", "serve", "--config", str(cfg)], capture_output=True, text=True,
                       env={**os.environ, "AGENTDECK_ADMIN_TOKEN": ""}, timeout=30)
    assert r.returncode != 0 and "refusing to listen on non-loopback" in r.stderr


def test_env_expansion_and_status_finds_the_local_gateway(tmp_path: Path, mock: MockServer) -> None:
    cfg = write_serve_config(tmp_path / "c.toml", tmp_path / "data", mock.url).read_text()
    cfg = cfg.replace('api_key = "sk-provider-x"', 'api_key = "${MY_PROVIDER_KEY}"').replace(
        f'admin_token = "{ADMIN_TOKEN}"', 'admin_token = ""')
    path = tmp_path / "env.toml"
    path.write_text(cfg)
    env = {**os.environ, "MY_PROVIDER_KEY": "sk-from-env-123456", "AGENTDECK_ADMIN_TOKEN": ""}
    proc = subprocess.Popen([sys.executable, "-m", "agentdeck", "serve", "--config", str(path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None and "listening on" in proc.stdout.readline()
        runtime = tmp_path / "data" / "gateway.json"
        assert oct(runtime.stat().st_mode & 0o777) == "0o600"
        r = subprocess.run([sys.executable, "-m", "agentdeck", "status", "--json", "--config", str(path)],
                           capture_output=True, text=True, env=env, timeout=30)
        assert r.returncode == 0, r.stderr
        assert '"stopped": false' in r.stdout
        httpx.post(url := __import__("json").loads(runtime.read_text())["url"] + "/v1/chat/completions",
                   headers={"Authorization": f"Bearer {GATEWAY_KEY}"},
                   json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}]}).raise_for_status()
        assert url
        assert any(h.startswith("<redacted-len-") for h in [mock.stats()["last_headers"].get("authorization", "")])
    finally:
        proc.terminate()
        proc.wait(15)


def test_a_call_outlasting_the_shutdown_grace_gets_503_and_no_traceback(tmp_path: Path, mock: MockServer) -> None:
    mock.update(latency_ms=15_000.0)
    cfg = write_serve_config(tmp_path / "c.toml", tmp_path / "data", mock.url)
    cfg.write_text(cfg.read_text().replace("shutdown_grace_s = 5", "shutdown_grace_s = 1"))
    proc, url = serve_process(cfg)
    got: list[httpx.Response] = []
    t = threading.Thread(target=lambda: got.append(httpx.post(
        url + "/v1/chat/completions", headers={"Authorization": f"Bearer {GATEWAY_KEY}"}, timeout=30,
        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}]})))
    t.start()
    deadline = time.monotonic() + 5
    while httpx.get(url + "/admin/status", headers=ADMIN).json()["in_flight"] < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    t.join(20)
    assert proc.wait(20) == 0
    err = proc.stderr.read() if proc.stderr else ""
    assert "Traceback" not in err
    assert got and got[0].status_code == 503 and got[0].json()["error"]["code"] == "gateway_shutdown"
    row = sqlite3.connect(tmp_path / "data" / "agentdeck.db").execute("SELECT status FROM requests").fetchone()
    assert row == (503,)
