"""What the two wire protocols have in common: the parsed request and the bad-request error.

Each protocol module (``openai_wire``, ``anthropic_wire``) validates a request body, rewrites
it for upstream, formats the gateway's own errors in that protocol, and reads usage from
JSON bodies and SSE streams.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson


class BadRequest(Exception):
    """A client error the gateway answers itself; ``field`` names the offending field."""

    def __init__(self, message: str, field: str | None = None, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.status = status


@dataclass(slots=True)
class ParsedRequest:
    endpoint: str
    body: dict[str, Any]
    model: str
    stream: bool
    max_tokens: int | None
    wants_stream_usage: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def require_str(body: dict[str, Any], name: str) -> str:
    v = body.get(name)
    if v is None:
        raise BadRequest(f"'{name}' is required", name)
    if not isinstance(v, str) or not v:
        raise BadRequest(f"'{name}' must be a non-empty string", name)
    return v


def optional_bool(body: dict[str, Any], name: str) -> bool:
    v = body.get(name, False)
    if v is None:
        return False
    if not isinstance(v, bool):
        raise BadRequest(f"'{name}' must be a boolean", name)
    return v


def optional_pos_int(body: dict[str, Any], name: str) -> int | None:
    v = body.get(name)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise BadRequest(f"'{name}' must be a positive integer", name)
    return v


def optional_number(body: dict[str, Any], name: str, lo: float, hi: float) -> None:
    v = body.get(name)
    if v is None:
        return
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= v <= hi:
        raise BadRequest(f"'{name}' must be a number between {lo:g} and {hi:g}", name)


def require_list(body: dict[str, Any], name: str) -> list[Any]:
    v = body.get(name)
    if v is None:
        raise BadRequest(f"'{name}' is required", name)
    if not isinstance(v, list):
        raise BadRequest(f"'{name}' must be an array", name)
    return v


def split_sse_events(buf: bytearray) -> list[bytes]:
    """Take the complete SSE events (terminated by a blank line) out of ``buf``, leaving the rest."""
    out: list[bytes] = []
    start = 0
    while True:
        i = buf.find(b"\n\n", start)
        if i < 0:
            break
        out.append(bytes(buf[start : i + 2]))
        start = i + 2
    if start:
        del buf[:start]
    return out


def sse_data_json(event: bytes) -> dict[str, Any] | None:
    """The JSON object on an SSE event's ``data:`` line, or None."""
    for line in event.split(b"\n"):
        if line.startswith(b"data:"):
            try:
                v = orjson.loads(line[5:].strip())
            except orjson.JSONDecodeError:
                return None
            return v if isinstance(v, dict) else None
    return None
