"""Helpers for driving the real agent clients (Claude Code, Codex) through `agentdeck run`.

Why a recording proxy: the clients are closed boxes that change every month. Placed between the
gateway and the mock provider, :class:`Recorder` keeps every request exactly as it reached the
"provider" (method, path, headers, JSON body) and the status the mock answered, so a test can say
what a client sent and a failure shows what the mock or the gateway got wrong.

Where the clients are: ``$AGENTDECK_CLIENTS_DIR/node_modules/.bin`` (``.ci/install-clients`` puts
them there, outside the repo). Without them the tests skip, unless ``AGENTDECK_REQUIRE_CLIENTS=1``
(CI), where a missing client is a failure.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

CLIENT_PINS = {"claude": "2.1.330", "codex": "0.169.0", "gemini": "0.61.0"}
_HOP = {b"host", b"content-length", b"transfer-encoding", b"connection", b"accept-encoding"}


def clients_dir() -> Path:
    return Path(os.environ.get("AGENTDECK_CLIENTS_DIR") or Path.home() / ".cache" / "agentdeck-clients")


def client_bin(name: str) -> Path:
    """The installed client's executable, or skip (fail under AGENTDECK_REQUIRE_CLIENTS=1) saying how to get it."""
    path = clients_dir() / "node_modules" / ".bin" / name
    if path.exists() and os.access(path, os.X_OK):
        return path
    reason = (f"{name} {CLIENT_PINS[name]} is not installed in {clients_dir()}/node_modules/.bin "
              f"(run `bash .ci/install-clients`, or set AGENTDECK_CLIENTS_DIR)")
    if os.environ.get("AGENTDECK_REQUIRE_CLIENTS") == "1":
        pytest.fail(reason + "; AGENTDECK_REQUIRE_CLIENTS=1 requires it", pytrace=False)
    pytest.skip(reason)


@dataclass
class Recorded:
    """One request as it reached the provider, and what the provider answered."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: Any
    status: int = 0
    response_head: bytes = b""

    @property
    def model(self) -> str | None:
        return self.body.get("model") if isinstance(self.body, dict) else None


@dataclass
class Recorder:
    """A pass-through HTTP proxy to ``upstream`` on a free loopback port that records every request."""

    upstream: str
    calls: list[Recorded] = field(default_factory=list)
    port: int = 0
    _server: Any = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def clear(self) -> None:
        self.calls.clear()

    def summary(self) -> str:
        return "\n".join(f"{c.method} {c.path} -> {c.status} model={c.model!r} {c.response_head[:300]!r}"
                         for c in self.calls) or "(no calls reached the provider)"

    async def _app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        chunks = []
        while True:
            msg = await receive()
            chunks.append(msg.get("body", b""))
            if not msg.get("more_body"):
                break
        raw = b"".join(chunks)
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        rec = Recorded(scope["method"], scope["path"], scope.get("query_string", b"").decode(), headers, body)
        self.calls.append(rec)
        fwd = [(k, v) for k, v in scope["headers"] if k.lower() not in _HOP]
        url = self.upstream + scope["path"] + (f"?{rec.query}" if rec.query else "")
        async with httpx.AsyncClient(timeout=60) as client:
            async with client.stream(scope["method"], url, headers=fwd, content=raw) as r:
                rec.status = r.status_code
                out = [(k.encode(), v.encode()) for k, v in r.headers.items()
                       if k.lower().encode() not in _HOP and k.lower() != "content-encoding"]
                await send({"type": "http.response.start", "status": r.status_code, "headers": out})
                async for chunk in r.aiter_raw():
                    if len(rec.response_head) < 2000:
                        rec.response_head += chunk[: 2000 - len(rec.response_head)]
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                await send({"type": "http.response.body", "body": b""})

    def start(self) -> "Recorder":
        import uvicorn

        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self._app, log_config=None, access_log=False, lifespan="off", interface="asgi3")

        class _Server(uvicorn.Server):
            def install_signal_handlers(self) -> None:
                return None

        self._server = _Server(config)

        def run() -> None:
            asyncio.run(self._server.serve(sockets=[sock]))

        self._thread = threading.Thread(target=run, name=f"recorder:{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("recording proxy did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(5)
