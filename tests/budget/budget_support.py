"""Fixtures for the budget tests: a config, a bus with a catch-all subscriber, a real Store on a tmp file."""

from __future__ import annotations

import json as _json
import os as _os
import subprocess as _subprocess
import sys as _sys
import threading as _threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, AsyncIterator

import pytest
from deck_support import FakeClock

from agentdeck.bus import Alert, Bus, Subscription
from agentdeck.cli import main
from agentdeck.config import Config, parse_config
from agentdeck.store import Store, db_path


def make_config(tmp_path: Path, **sections: Any) -> Config:
    data: dict[str, Any] = {"gateway": {"data_dir": str(tmp_path / "data"), "admin_token": "admintok"}}
    data.update(sections)
    return parse_config(data, "<test>", environ={})


def alerts(sub: Subscription) -> list[Alert]:
    return [e for e in sub.drain() if isinstance(e, Alert)]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def bus() -> Bus:
    return Bus()


@pytest.fixture
def cfg(tmp_path: Path) -> Config:
    return make_config(tmp_path)


@pytest.fixture
async def store(tmp_path: Path, bus: Bus) -> AsyncIterator[Store]:
    s = Store(db_path(tmp_path / "data"), bus, flush_interval_s=0.05)
    await s.open()
    yield s
    await s.close()


# -- a test double of the *gateway's admin API* for the CLI tests (the CLI is what is under test) --

class GatewayDouble:
    """Answers /admin/sessions, /admin/status, /admin/stop, /admin/resume like the gateway does; records calls."""

    def __init__(self, token: str = "admintok") -> None:
        self.token = token
        self.calls: list[tuple[str, str, dict[str, Any] | None, str]] = []
        self.status: dict[str, Any] = {
            "stopped": False, "stop_reason": None, "stopped_keys": {},
            "spend": {"hour_usd": 1.5, "day_usd": 4.0, "reserved_usd": 0.25},
            "budget": {"hourly_usd": 10.0, "daily_usd": 50.0},
            "keys": {"dev": {"day_usd": 2.0, "budget_usd": 25.0, "reserved_usd": 0.0}},
            "providers": {"anthropic": {"rps_limit": 35.0, "slots_limit": 35, "in_flight": 2, "rate_limited_total": 3}},
            "uptime_s": 4000, "in_flight": 2,
        }
        self.sessions = 0
        self.confirm_max_requests = True  # False: a gateway that ignores max_requests
        double = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a: Any) -> None:
                pass

            def _reply(self, code: int, body: dict[str, Any]) -> None:
                data = _json.dumps(body).encode()
                self.send_response(code)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self, method: str) -> None:
                n = int(self.headers.get("content-length") or 0)
                body = _json.loads(self.rfile.read(n)) if n else None
                auth = self.headers.get("authorization", "")
                double.calls.append((method, self.path, body, auth))
                if auth != f"Bearer {double.token}":
                    self._reply(401, {"error": {"message": "admin token required"}})
                    return
                st = double.status
                if self.path == "/admin/status" and method == "GET":
                    self._reply(200, st)
                elif self.path == "/admin/sessions" and method == "POST":
                    double.sessions += 1
                    name = (body or {}).get("name") or "session"
                    if double.sessions > 1:
                        name = f"{name}-{double.sessions}"
                    reply = {"session": name, "key": f"adk-s-secret{double.sessions}"}
                    if double.confirm_max_requests and (body or {}).get("max_requests") is not None:
                        reply["max_requests"] = body["max_requests"]  # as the gateway confirms a request limit
                    self._reply(200, reply)
                elif self.path == "/admin/stop" and method == "POST":
                    assert body is not None
                    if body.get("key"):
                        st["stopped_keys"][body["key"]] = body["reason"]
                    else:
                        st["stopped"], st["stop_reason"] = True, body["reason"]
                    self._reply(200, {"stopped": True, "key": body.get("key"), "reason": body["reason"]})
                elif self.path == "/admin/resume" and method == "POST":
                    key = (body or {}).get("key")
                    if key:
                        st["stopped_keys"].pop(key, None)
                    else:
                        st["stopped"], st["stop_reason"] = False, None
                    self._reply(200, {"stopped": st["stopped"], "key": key})
                else:
                    self._reply(404, {"error": {"message": "no route"}})

            def do_GET(self) -> None:
                self._handle("GET")

            def do_POST(self) -> None:
                self._handle("POST")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = _threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> "GatewayDouble":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def gateway() -> Any:
    with GatewayDouble() as g:
        yield g


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    """Environment for `python -m agentdeck ...`: a temp config (admin token, data dir) and nothing inherited that matters."""
    cfgfile = tmp_path / "config.toml"
    cfgfile.write_text(
        f'[gateway]\nadmin_token = "admintok"\ndata_dir = "{tmp_path / "data"}"\nport = 1\n\n'
        '[[keys]]\nname = "dev"\nkey = "devsecret-123456"\ndaily_budget_usd = 25.0\n'
    )
    env = {k: v for k, v in _os.environ.items() if not k.startswith(("AGENTDECK_", "ANTHROPIC_", "OPENAI_"))}
    env["AGENTDECK_CONFIG"] = str(cfgfile)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def agentdeck(env: dict[str, str], *args: str, timeout: float = 30, **kw: Any) -> "_subprocess.CompletedProcess[str]":
    return _subprocess.run([_sys.executable, "-m", "agentdeck", *args], env=env, capture_output=True, text=True,
                           timeout=timeout, stdin=_subprocess.DEVNULL, **kw)


class Result:
    def __init__(self, returncode: int, stdout: str, stderr: str) -> None:
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


@pytest.fixture
def cli(cli_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Any:
    """The real `agentdeck` entry point, in-process (a fresh interpreter per call costs a second each)."""
    for k in [k for k in __import__("os").environ if k.startswith("AGENTDECK_")]:
        monkeypatch.delenv(k)
    monkeypatch.setenv("AGENTDECK_CONFIG", cli_env["AGENTDECK_CONFIG"])

    def call(*args: str) -> Result:
        capsys.readouterr()
        try:
            code = main(list(args))
        except SystemExit as e:  # argparse errors
            code = int(e.code or 0)
        out = capsys.readouterr()
        return Result(code, out.out, out.err)

    return call
