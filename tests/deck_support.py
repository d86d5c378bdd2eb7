"""Constants and config builders the gateway-level tests share (imported by name: `from deck_support import ...`)."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import re
import threading
import subprocess
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, Iterator

PROVIDER_KEY_ANTHROPIC = "sk-ant-provider-SECRET-aaaaaaaaaaaa"
PROVIDER_KEY_OPENAI = "sk-provider-SECRET-bbbbbbbbbbbbbbbb"
GATEWAY_KEY = "gw-dev-SECRET-cccccccccccc"
ADMIN_TOKEN = "admin-SECRET-dddddddddddd"


async def wait_for(cond: Any, timeout: float = 8.0) -> None:
    """Poll ``cond`` on the running loop until it holds; fail the test after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond():
        if loop.time() > end:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


class FakeClock:
    """A clock the test moves by hand, for code that takes its clock as an argument
    (time is an input of the ledger, the limiter and the anomaly detector, not what is tested)."""

    def __init__(self, t: float = 1_700_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds



def gateway_config_dict(data_dir: Path, upstream_url: str, **sections: Any) -> dict[str, Any]:
    """A config with both protocols served by the mock, one caller key and an admin token."""
    cfg: dict[str, Any] = {
        "gateway": {"host": "127.0.0.1", "port": 0, "admin_token": ADMIN_TOKEN, "data_dir": str(data_dir),
                    "store_flush_interval_s": 0.2, "shutdown_grace_s": 2},
        "keys": [{"name": "dev", "key": GATEWAY_KEY}],
        "budget": {"hourly_usd": 1000.0, "daily_usd": 5000.0},
        "providers": {
            "anthropic": {"protocol": "anthropic", "base_url": upstream_url, "api_key": PROVIDER_KEY_ANTHROPIC,
                          "models": ["claude-haiku-4-5", "claude-sonnet-4-5", "claude-opus-4-5"],
                          "retry": {"backoff_base_s": 0.01, "backoff_max_s": 0.05}},
            "openai": {"protocol": "openai", "base_url": upstream_url, "api_key": PROVIDER_KEY_OPENAI,
                       "models": ["gpt-4o-mini", "gpt-4o", "gpt-4.1"],
                       "retry": {"backoff_base_s": 0.01, "backoff_max_s": 0.05}},
        },
    }
    for name, value in sections.items():
        if isinstance(value, dict) and isinstance(cfg.get(name), dict):
            merged = dict(cfg[name])
            merged.update(value)
            cfg[name] = merged
        else:
            cfg[name] = value
    return cfg


def write_serve_config(path: Path, data_dir: Path, upstream: str, extra: str = "") -> Path:
    """A TOML config for an `agentdeck serve` subprocess: one OpenAI-protocol provider (the mock), one key."""
    path.write_text(f"""
[gateway]
port = 0
admin_token = "{ADMIN_TOKEN}"
data_dir = "{data_dir}"
store_flush_interval_s = 0.5
shutdown_grace_s = 5
[[keys]]
name = "dev"
key = "{GATEWAY_KEY}"
[budget]
hourly_usd = 100000.0
daily_usd = 100000.0
[anomaly]
enabled = false
[providers.openai]
protocol = "openai"
base_url = "{upstream}"
api_key = "sk-provider-x"
models = ["gpt-4o-mini"]
{extra}
""")
    return path


class _DrainedStream:
    """A child's pipe read on a thread into memory; ``read()`` returns everything once the pipe closes."""

    def __init__(self, stream: Any) -> None:
        import threading

        self._stream = stream
        self._parts: list[str] = []
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        for chunk in iter(lambda: self._stream.read(65536), ""):
            self._parts.append(chunk)

    def read(self) -> str:
        self._thread.join(30)
        return "".join(self._parts)

    def close(self) -> None:
        self._stream.close()


class _ServeProcess(subprocess.Popen):  # type: ignore[type-arg]
    """A serve child whose stderr is drained on a thread; ``communicate`` waits and returns what it wrote."""

    def communicate(self, input: Any = None, timeout: float | None = None) -> tuple[str, str]:  # noqa: A002
        self.wait(timeout)
        out = self.stdout.read() if self.stdout is not None else ""
        return out, self.stderr.read() if self.stderr is not None else ""


def serve_process(config: Path) -> tuple["subprocess.Popen[str]", str]:
    """Start `agentdeck serve --config ...` and return it with the URL it printed."""
    proc = _ServeProcess([sys.executable, "-m", "agentdeck", "serve", "--config", str(config)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stderr is not None
    # serve logs a line per call on stderr: drain it as it comes, or a busy test fills the pipe and the
    # gateway blocks on its next write (it then cannot even shut down). proc.stderr.read() still works.
    proc.stderr = _DrainedStream(proc.stderr)  # type: ignore[assignment]
    line = proc.stdout.readline()
    m = re.search(r"(http://\S+)", line)
    assert m, f"serve did not start: {line!r} {proc.stderr.read() if proc.poll() is not None and proc.stderr else ''}"
    return proc, m.group(1)


class _OtlpHandler(BaseHTTPRequestHandler):
    """Keeps each POSTed ExportTraceServiceRequest body (gunzipped)."""

    received: list[bytes] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        if self.headers.get("content-encoding") == "gzip":
            body = gzip.decompress(body)
        type(self).received.append(body)
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@contextlib.contextmanager
def otlp_receiver() -> Iterator[tuple[str, list[bytes]]]:
    """A minimal OTLP/HTTP trace receiver on a free loopback port: (its /v1/traces URL, the bodies received)."""
    handler = type("Handler", (_OtlpHandler,), {"received": []})
    server = HTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1/traces", handler.received
    finally:
        server.shutdown()
        server.server_close()
