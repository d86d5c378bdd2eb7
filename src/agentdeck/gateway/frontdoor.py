"""The front door: bounds on the header phase of every connection, before any ASGI code runs.

Why here and not in uvicorn's options: uvicorn's httptools protocol has no header-read
timeout (its keep-alive timer only runs between requests), no header size cap (llhttp
buffers a 50 MB header value), and ``limit_concurrency`` answers a plain-text 503 only
once the headers are complete, which a slowloris client never sends. So the gateway serves
with a small subclass of that protocol that adds three bounds:

- a header deadline: a request whose headers are not complete ``header_timeout_s`` after
  its first byte (or after the connection opened) gets a 408 and is closed;
- a header size cap: past ``max_header_bytes`` of request line and headers, a 431, closed,
  before the parser buffers more;
- a connection cap: a connection over ``max_connections`` open ones is answered at once
  with a 503 that says so, and closed, so an attacker holding sockets cannot take the last
  file descriptors from normal callers (the cap stays below the process's file limit).

A request the HTTP parser rejects gets a 400 in the same JSON (uvicorn's is plain text).
Refusals are JSON in the error shape of the protocol the path names (as far as it has
arrived; OpenAI's otherwise), with ``connection: close``. The cost on a normal request: two bounded ``find`` calls on its first chunk, no timer.
"""

from __future__ import annotations

import asyncio
import resource
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from agentdeck.wire import PROVIDER_WIRES

_FD_RESERVE_MIN = 64  # descriptors kept for upstream connections, the database, logs


@dataclass(slots=True, frozen=True)
class FrontDoor:
    """The header-phase bounds. ``max_connections`` None: from the file limit (see :func:`connection_cap`)."""

    header_timeout_s: float = 10.0
    max_header_bytes: int = 64 * 1024
    max_connections: int | None = None


def connection_cap(requested: int | None = None) -> int:
    """Open connections allowed: what the file limit leaves after a reserve (a quarter, at least 64),
    or ``requested`` if that is lower. Not lower by default: 10,000 callers at once are a load the
    gateway must queue and answer (429 past the slots' wait), not refuse at the door."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return max(1, requested) if requested is not None else 1_000_000
    room = max(1, soft - max(_FD_RESERVE_MIN, soft // 4))
    return min(room, requested) if requested is not None else room


def _header_end(seen: bytes) -> int:
    """Where the header block ends in ``seen`` (just past the blank line), or -1. The bare-LF search
    stops at the CRLF end when there is one, so a large body is not scanned a second time."""
    i = seen.find(b"\r\n\r\n")
    j = seen.find(b"\n\n", 0, i if i >= 0 else len(seen))
    if j >= 0:
        return j + 2
    return i + 4 if i >= 0 else -1


def _protocol_of(path: bytes) -> str:
    """Whose error shape a refusal takes, from the request path (as much of it as has arrived)."""
    if path.startswith(b"/v1/messages"):
        return "anthropic"
    if (path.startswith(b"/v1beta/") or path.startswith(b"/v1/models/")) and b":" in path:
        return "gemini"
    return "openai"


def _refusal(status: int, reason: str, message: str, code: str, extra: bytes = b"") -> dict[str, bytes]:
    """The whole HTTP answer, one per protocol's error shape (built once, not per refusal)."""
    out = {}
    for proto, wire in PROVIDER_WIRES.items():
        body = wire.error_body(status, message, code)
        out[proto] = (f"HTTP/1.1 {status} {reason}\r\n".encode("ascii") + b"content-type: application/json\r\n"
                      + b"content-length: " + str(len(body)).encode("ascii") + b"\r\n" + extra
                      + b"connection: close\r\n\r\n" + body)
    return out


def protocol_class(door: FrontDoor) -> type[HttpToolsProtocol]:
    """uvicorn's httptools protocol with ``door``'s bounds (pass as ``uvicorn.Config(http=...)``)."""
    cap = connection_cap(door.max_connections)
    timeout_s = door.header_timeout_s
    limit = door.max_header_bytes
    too_many = _refusal(503, "Service Unavailable",
                        f"agentdeck: too many open connections (the cap is {cap}); retry in a moment",
                        "too_many_connections", b"retry-after: 1\r\n")
    too_slow = _refusal(408, "Request Timeout",
                        f"agentdeck: request headers not complete within {timeout_s:g}s", "header_timeout")
    bad_http = _refusal(400, "Bad Request", "agentdeck: the request is not valid HTTP/1.1 (request line or headers)",
                        "invalid_http")
    too_big = _refusal(431, "Request Header Fields Too Large",
                       f"agentdeck: request line and headers are larger than {limit} bytes", "headers_too_large")

    class GuardedHttpToolsProtocol(HttpToolsProtocol):
        """HttpToolsProtocol plus a header deadline, a header size cap and a connection cap."""

        connection_cap = cap

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._awaiting_headers = True
            self._header_bytes = 0
            self._tail = b""
            self._header_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            if len(self.connections) > cap:
                self._refuse(too_many)
                return
            self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if self._awaiting_headers:
                seen = self._tail + data if self._tail else data
                end = _header_end(seen)
                if end < 0:
                    # Headers still coming: only now does this request need its deadline (a request whose
                    # headers arrive whole in one read, nearly every one, never arms a timer).
                    if self._header_timer is None:
                        self._arm()
                    self._header_bytes += len(data)
                    self._tail = seen[-3:]
                    if self._header_bytes > limit:
                        self._refuse(too_big)
                        return
                else:
                    self._header_bytes += end - len(self._tail)
                    if self._header_bytes > limit:
                        self._refuse(too_big)
                        return
                    self._awaiting_headers = False
                    if self._header_timer is not None:
                        self._disarm()
            super().data_received(data)

        def on_headers_complete(self) -> None:
            # The parser's word is final (a pipelined request's headers may sit in an earlier chunk).
            if self._awaiting_headers:
                self._awaiting_headers = False
                self._disarm()
            super().on_headers_complete()

        def send_400_response(self, msg: str) -> None:
            """A request the HTTP parser rejects (NUL in a header, a broken request line): JSON, not plain text."""
            self._refuse(bad_http)

        def on_message_complete(self) -> None:
            super().on_message_complete()
            # The next request on this connection starts its own header phase (its timer starts
            # with its first byte; until then uvicorn's keep-alive timeout applies).
            self._awaiting_headers = True
            self._header_bytes = 0
            self._tail = b""

        def _arm(self) -> None:
            self._disarm()
            self._header_timer = self.loop.call_later(timeout_s, self._header_timeout)

        def _disarm(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _header_timeout(self) -> None:
            self._header_timer = None
            if self._awaiting_headers and (self.cycle is None or self.cycle.response_complete):
                self._refuse(too_slow)

        def _refuse(self, answers: dict[str, bytes]) -> None:
            self._disarm()
            self._awaiting_headers = False
            transport = self.transport
            if transport is not None and not transport.is_closing():
                transport.write(answers[_protocol_of(getattr(self, "url", b"") or b"")])
                transport.close()

    return GuardedHttpToolsProtocol
