"""The console's embedded gateway writes its call log to gateway.log in the data dir (0600), never to the
terminal; `agentdeck status` draws bars on a terminal and stays plain text when piped."""

from __future__ import annotations

import os
import pty
import stat
import subprocess
import sys
from pathlib import Path

from ops_support import ADMIN_TOKEN, Served, chat, wait_for

from agentdeck.config import load_config
from agentdeck.gateway.server import GatewayThread
from agentdeck.tui.engine import InProcessEngine


async def test_embedded_gateway_logs_to_a_file(tmp_path: Path, config: Path) -> None:
    with GatewayThread(load_config(config), port=0) as gt:
        engine = InProcessEngine(gt, owns_gateway=False)
        try:
            r = chat(gt.url)
            assert r.status_code == 200
            log = tmp_path / "data" / "gateway.log"
            assert engine.log_path == log
            rid = r.headers["x-agentdeck-request-id"]
            line = wait_for(lambda: log.exists() and next((ln for ln in log.read_text().splitlines() if rid in ln), None))
        finally:
            await engine.close()
    assert " call " in line and "gpt-4o-mini" in line
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    assert ADMIN_TOKEN not in log.read_text()


def test_status_draws_bars_on_a_terminal(tmp_path: Path, env: dict[str, str], config: Path) -> None:
    s = Served(["--config", str(config), "--quiet"], env, tmp_path / "logs")
    try:
        master, slave = pty.openpty()
        tty_env = {k: v for k, v in env.items() if k != "NO_COLOR"} | {"TERM": "xterm-256color", "COLUMNS": "120",
                                                                      "AGENTDECK_ADMIN_TOKEN": ADMIN_TOKEN}
        proc = subprocess.Popen([sys.executable, "-m", "agentdeck", "status", "--url", s.url], env=tty_env,
                                stdout=slave, stderr=slave, stdin=subprocess.DEVNULL)
        os.close(slave)
        out = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        proc.wait(30)
        os.close(master)
        piped = subprocess.run([sys.executable, "-m", "agentdeck", "status", "--url", s.url], env=tty_env,
                               capture_output=True, text=True, timeout=60)
    finally:
        s.stop()
    text = out.decode(errors="replace")
    assert proc.returncode == 0 and "━" in text and "\x1b[" in text and "60 min" in text, text
    assert piped.returncode == 0 and "━" not in piped.stdout and "\x1b[" not in piped.stdout
    assert piped.stdout.startswith(f"LIVE     {s.url}")
