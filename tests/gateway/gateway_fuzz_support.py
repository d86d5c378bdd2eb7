"""The fuzz suite's rig: a real `agentdeck serve` process (its stderr read by a thread), a raw HTTP client.

Why raw sockets: httpx refuses the headers worth sending here (non-ASCII, odd bytes, NUL),
so requests are written byte by byte and answers parsed by hand (content-length or chunked).
Why a process: "no traceback on stderr" is only checkable on the real process's stderr.
"""

from __future__ import annotations

import json
import re
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deck_support import ADMIN_TOKEN, GATEWAY_KEY, PROVIDER_KEY_ANTHROPIC, PROVIDER_KEY_OPENAI

GOOGLE_KEY = "AIza-provider-SECRET-ffffffffffff"


def fuzz_config(path: Path, data_dir: Path, upstream: str) -> Path:
    """Both OpenAI endpoints, Anthropic and Gemini on the mock; one key; budgets that never bite."""
    path.write_text(f"""
[gateway]
port = 0
admin_token = "{ADMIN_TOKEN}"
data_dir = "{data_dir}"
store_flush_interval_s = 0.2
shutdown_grace_s = 5
max_body_bytes = 262144
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
base_url = "{upstream}/v1"
api_key = "{PROVIDER_KEY_OPENAI}"
models = ["gpt-4o-mini", "gpt-4o"]
[providers.anthropic]
protocol = "anthropic"
base_url = "{upstream}"
api_key = "{PROVIDER_KEY_ANTHROPIC}"
models = ["claude-haiku-4-5", "claude-sonnet-4-5"]
[providers.gemini]
protocol = "gemini"
base_url = "{upstream}"
api_key = "{GOOGLE_KEY}"
models = ["gemini-2.5-flash"]
""")
    return path


class ServeProcess:
    """`agentdeck serve` with its stderr collected by a thread (a full pipe would block the gateway)."""

    def __init__(self, config: Path, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.started = time.monotonic()
        self.calls: set[str] = set()  # request ids of calls made with the known key (the fuzz fills it)
        self.proc = subprocess.Popen([sys.executable, "-m", "agentdeck", "serve", "--config", str(config)],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self._err: list[bytes] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._drain, daemon=True).start()
        line = self.proc.stdout.readline().decode("utf-8", "replace")
        m = re.search(r"http://([0-9.]+):(\d+)", line)
        assert m, f"serve did not start: {line!r} {self.stderr()}"
        self.url = m.group(0)
        self.addr = (m.group(1), int(m.group(2)))
        threading.Thread(target=self.proc.stdout.read, daemon=True).start()

    def _drain(self) -> None:
        assert self.proc.stderr is not None
        for line in iter(self.proc.stderr.readline, b""):
            with self._lock:
                self._err.append(line)

    def stderr(self) -> str:
        with self._lock:
            return b"".join(self._err).decode("utf-8", "replace")

    def stop(self) -> int:
        self.proc.terminate()
        try:
            return self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(10)

    def recorded_ids(self) -> set[str]:
        """Request ids in the database (the gateway flushes its queue on GET /admin/requests first)."""
        answer(self.addr, "GET", "/admin/requests?limit=1", [(b"authorization", f"Bearer {ADMIN_TOKEN}".encode())])
        conn = sqlite3.connect(self.data_dir / "agentdeck.db", timeout=30)
        try:
            return {r[0] for r in conn.execute("SELECT id FROM requests")}
        finally:
            conn.close()


@dataclass
class Answer:
    status: int
    headers: dict[bytes, bytes] = field(default_factory=dict)
    body: bytes = b""

    def json(self) -> Any:
        return json.loads(self.body)


def _dechunk(data: bytes) -> bytes:
    out = b""
    while data:
        line, _, rest = data.partition(b"\r\n")
        size = int(line.split(b";")[0].strip() or b"0", 16)
        if size == 0:
            break
        out += rest[:size]
        data = rest[size + 2:]
    return out


def answer(addr: tuple[str, int], method: str, path: str, headers: list[tuple[bytes, bytes]],
           body: bytes = b"", timeout_s: float = 30.0) -> Answer:
    """Send one request exactly as given (plus Host, Content-Length, Connection: close); read the whole answer."""
    head = f"{method} {path} HTTP/1.1\r\n".encode("latin-1") + b"host: fuzz\r\n"
    for k, v in headers:
        head += k + b": " + v + b"\r\n"
    head += b"content-length: " + str(len(body)).encode() + b"\r\nconnection: close\r\n\r\n"
    with socket.create_connection(addr, timeout=timeout_s) as s:
        s.sendall(head + body)
        raw = b""
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            raw += chunk
    if not raw:
        return Answer(status=0)
    top, _, rest = raw.partition(b"\r\n\r\n")
    lines = top.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    hdrs = {}
    for ln in lines[1:]:
        k, _, v = ln.partition(b":")
        hdrs[k.strip().lower()] = v.strip()
    if hdrs.get(b"transfer-encoding", b"").lower() == b"chunked":
        rest = _dechunk(rest)
    return Answer(status=status, headers=hdrs, body=rest)


def error_shape_ok(protocol: str, body: Any) -> bool:
    """The caller's own error format (CONTRACT.md): OpenAI, Anthropic, or Google's."""
    if not isinstance(body, dict):
        return False
    err = body.get("error")
    if protocol == "anthropic":
        return body.get("type") == "error" and isinstance(err, dict) and isinstance(err.get("message"), str) \
            and isinstance(err.get("type"), str)
    if protocol == "gemini":
        return isinstance(err, dict) and isinstance(err.get("message"), str) and isinstance(err.get("code"), int)
    return isinstance(err, dict) and isinstance(err.get("message"), str) and {"type", "param", "code"} <= set(err)
