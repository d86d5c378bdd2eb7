"""`agentdeck console --attach URL`: the console against a real `agentdeck serve` in another process."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
from deck_support import wait_for

from agentdeck.tui.app import ConsoleApp
from agentdeck.tui.engine import RemoteEngine
from agentdeck.tui.screens import ConfirmScreen, StopScreen
from agentdeck.tui.widgets.call_table import CallTable

ADMIN = "attach-admin-token-0123456789"
KEY = "attach-caller-key-0123456789"
SIZE = (140, 45)


def write_config(tmp_path: Path, upstream: str) -> Path:
    p = tmp_path / "agentdeck.toml"
    p.write_text(f"""
[gateway]
host = "127.0.0.1"
port = 0
admin_token = "{ADMIN}"
data_dir = "{tmp_path / 'data'}"
store_flush_interval_s = 0.2
shutdown_grace_s = 1

[[keys]]
name = "attach-dev"
key = "{KEY}"

[providers.openai]
protocol = "openai"
base_url = "{upstream}"
api_key = "sk-test-provider-key-aaaaaaaa"
models = ["gpt-4o-mini", "gpt-4o", "gpt-4.1"]

[providers.anthropic]
protocol = "anthropic"
base_url = "{upstream}"
api_key = "sk-ant-test-provider-key-bbbbbbbb"
models = ["claude-haiku-4-5", "claude-sonnet-4-5", "claude-opus-4-5"]
""")
    return p


def start_serve(config: Path, port: int = 0) -> tuple[subprocess.Popen[str], str]:
    env = {**os.environ, "AGENTDECK_CONFIG": str(config)}
    proc = subprocess.Popen([sys.executable, "-m", "agentdeck", "serve", "--config", str(config), "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert "listening on" in line, f"serve did not start: {line!r}"
    return proc, line.strip().rsplit(" ", 1)[-1]


def stop_serve(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def call(url: str) -> httpx.Response:
    return httpx.post(url + "/v1/chat/completions", headers={"authorization": f"Bearer {KEY}"}, timeout=10,
                      json={"model": "auto", "max_tokens": 20, "messages": [{"role": "user", "content": "fix the typo"}]})



async def test_attached_console_shows_live_calls_stops_and_reconnects(tmp_path: Path, mock: Any) -> None:
    config = write_config(tmp_path, mock.url)
    proc, url = await asyncio.to_thread(start_serve, config)
    try:
        engine = RemoteEngine(url, ADMIN, backoff_s=(0.1, 0.5))
        app = ConsoleApp(engine, db_path=tmp_path / "console.db")
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(lambda: engine.connected)
            r = await asyncio.to_thread(call, url)
            assert r.status_code == 200
            table = app.query_one(CallTable)
            await wait_for(lambda: any(row.ev.id == r.headers["x-agentdeck-request-id"] for row in table.rows))
            assert table.rows[0].ev.key == "attach-dev"
            assert "attached" in str(app.topbar.render())

            # The stop goes through the admin API and the other process refuses calls.
            await pilot.press("exclamation_mark")
            await pilot.pause()
            assert isinstance(app.screen, StopScreen) and app.screen.mode == "attached"
            await pilot.press("enter")
            await wait_for(lambda: app.top.stopped)
            refused = await asyncio.to_thread(call, url)
            assert refused.status_code == 403 and refused.headers["x-should-retry"] == "false"
            await pilot.press("R")
            await pilot.pause()
            assert isinstance(app.screen, ConfirmScreen)
            await pilot.press("enter")
            await wait_for(lambda: not app.top.stopped)
            assert (await asyncio.to_thread(call, url)).status_code == 200

            # The gateway goes away and comes back on the same port: the console reconnects on its own.
            port = int(url.rsplit(":", 1)[1])
            await asyncio.to_thread(stop_serve, proc)
            await wait_for(lambda: not engine.connected)
            await pilot.pause(0.3)
            assert "reconnecting" in str(app.topbar.render())
            proc, url2 = await asyncio.to_thread(start_serve, config, port)
            assert url2 == url
            await wait_for(lambda: engine.connected and engine.generation >= 2)
            r2 = await asyncio.to_thread(call, url)
            await wait_for(lambda: any(row.ev.id == r2.headers["x-agentdeck-request-id"] for row in table.rows))
    finally:
        stop_serve(proc)


async def test_console_can_run_its_gateway_as_a_child_process(tmp_path: Path, mock: Any) -> None:
    """`agentdeck console --gateway-process`: the gateway in its own process, reached like --attach,
    but owned by the console: the top bar says so and quitting while it serves asks first."""
    from agentdeck.cli.console import spawn_gateway
    from agentdeck.config import load_config

    cfg = load_config(write_config(tmp_path, mock.url))
    proc, url, token = await asyncio.to_thread(spawn_gateway, cfg)
    try:
        assert proc.pid != os.getpid()
        engine = RemoteEngine(url, token, child=True)
        app = ConsoleApp(engine, db_path=tmp_path / "data" / "agentdeck.db")
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(lambda: engine.connected)
            r = await asyncio.to_thread(call, url)
            assert r.status_code == 200
            table = app.query_one(CallTable)
            await wait_for(lambda: any(row.ev.id == r.headers["x-agentdeck-request-id"] for row in table.rows))
            assert f"child process {url}" in str(app.topbar.render())
            await wait_for(lambda: app.top.rps > 0)
            await pilot.press("q")
            await pilot.pause(0.2)
            assert isinstance(app.screen, ConfirmScreen), "quitting stops the child gateway: it must ask first"
            await pilot.press("escape")
    finally:
        proc.terminate()
        assert proc.wait(15) == 0
