"""What every wire protocol has in common: the parsed request, the bad-request error,
the interface each protocol module implements, and the checks governance needs.

Why so few checks: the gateway governs who calls, which model, what it may cost and
whether it may go at all. It reads the key, ``model``, the token-limit fields and
``stream``; everything else (roles, content blocks, tools, new fields) is the
provider's to judge and is forwarded exactly as sent. A gateway stricter than its
provider breaks clients the provider accepts (Claude Code's system-role turns did).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from agentdeck.pricing import Usage
from agentdeck.wire.endpoints import Endpoint
from agentdeck.wire.sse import SSEEvent


class BadRequest(Exception):
    """A client error the gateway answers itself; ``field`` names the offending field."""

    def __init__(self, message: str, field: str | None = None, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.status = status


@dataclass(slots=True)
class ParsedRequest:
    """What governance read from one request body; ``body`` and ``raw`` are the body as sent."""

    endpoint: Endpoint
    body: dict[str, Any]
    raw: bytes
    model: str
    stream: bool
    max_tokens: int | None
    """The token limit the client sent (the protocol's field), None when it sent none."""
    limit_field: str | None = None
    """Which key ``max_tokens`` came from, so a cap changes that key and no other."""
    wants_stream_usage: bool = False
    """OpenAI chat: the client asked for ``stream_options.include_usage`` itself."""
    min_tokens: int | None = None
    """The lowest token limit the provider accepts (Anthropic: thinking.budget_tokens + 1)."""
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class StreamFailure:
    """A provider error event inside a stream: passed to the caller as sent, recorded as failed."""

    status: int
    kind: str
    message: str


class StreamMeter(Protocol):
    """Reads one stream event by event: usage, answer size, its end, a provider error."""

    usage: Usage | None
    text_chars: int
    done: bool
    failure: StreamFailure | None

    def feed(self, ev: SSEEvent) -> bytes | None:
        """The bytes to forward for this event (None to drop it)."""
        ...


class WireProtocol(Protocol):
    """One client protocol: parse, patch, meter, and the gateway's own answers in its format."""

    name: str
    """The provider protocol this endpoint speaks ("openai" or "anthropic")."""

    def parse(self, endpoint: Endpoint, body: dict[str, Any], raw: bytes) -> ParsedRequest:
        """Read and check what governance needs; raise BadRequest naming the field."""
        ...

    def patch(self, p: ParsedRequest, model: str, max_tokens: int) -> bytes:
        """The body sent upstream: only the keys the gateway must change are changed."""
        ...

    def meter(self, p: ParsedRequest) -> StreamMeter:
        """A fresh meter for one streamed answer."""
        ...

    def usage_from_json(self, body: Any) -> Usage | None:
        """The usage of a whole (non-streamed) answer, None when it has none."""
        ...

    def error_body(self, status: int, message: str, code: str | None = None, param: str | None = None) -> bytes:
        """An answer the gateway makes itself (refusals, its own failures), in this protocol's error shape."""
        ...

    def stream_error_event(self, message: str, code: str) -> bytes:
        """An error event to end a stream the gateway has to cut (stop, provider cut off)."""
        ...

    def auth_headers(self, api_key: str) -> dict[str, str]:
        """How this protocol's providers take their key."""
        ...


def event_json(data: bytes | None) -> dict[str, Any] | None:
    """An event's data as a JSON object, or None (no data, not JSON, not an object): meters read
    only objects, and pass everything else on untouched."""
    if data is None:
        return None
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    return obj if isinstance(obj, dict) else None


class MeterBase:
    """What every stream meter records: the usage, the answer's size, its end, a provider error."""

    __slots__ = ("usage", "text_chars", "done", "failure")

    def __init__(self) -> None:
        self.usage: Usage | None = None
        self.text_chars = 0
        self.done = False
        self.failure: StreamFailure | None = None


def require_model(body: dict[str, Any]) -> str:
    v = body.get("model")
    if v is None:
        raise BadRequest("'model' is required", "model")
    if not isinstance(v, str) or not v:
        raise BadRequest("'model' must be a non-empty string", "model")
    return v


def optional_bool(body: dict[str, Any], name: str) -> bool:
    v = body.get(name)
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


def as_int(v: Any) -> int:
    """A usage count as an int: providers send ints; anything else counts as 0, never a crash."""
    if isinstance(v, int) and not isinstance(v, bool):
        return v if v > 0 else 0
    if isinstance(v, float) and v > 0:
        return int(v)
    return 0


def as_dict(v: Any) -> dict[str, Any]:
    return v if isinstance(v, dict) else {}
