"""One call as it moves through the pipeline, and the refusal any stage may raise.

The stages (admission -> routing -> reservation -> upstream -> accounting) each add what
they learn to the ``Call``; ``Refusal`` is the answer the gateway makes itself, in the
caller's protocol, whichever stage decides it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from agentdeck.pricing import Usage
from agentdeck.routing import Route
from agentdeck.wire import Endpoint, ParsedRequest, StreamFailure, WireProtocol

if TYPE_CHECKING:
    from agentdeck.budget.ledger import Reservation

NO_TIER = "none"
"""x-agentdeck-tier of a call that has no tier (a model outside the tier table, or not yet routed)."""
_UNSAFE_HEADER_CHARS = re.compile(r"[^\x20-\x7e\xa0-\xff]")


def header_value(text: str, limit: int = 200) -> str:
    """``text`` made safe for a response header: control characters (NUL, CR, LF) and anything
    outside Latin-1 become ``?``, and it is cut to ``limit`` characters.

    The model name a client sends is echoed in ``x-agentdeck-model``; unchecked, a CR or LF
    in it broke the connection and the call went unrecorded.
    """
    if len(text) > limit:
        text = text[:limit]
    return text if text.isascii() and text.isprintable() else _UNSAFE_HEADER_CHARS.sub("?", text)


@dataclass(frozen=True, slots=True)
class Identity:
    """Who is calling: the configured key's name, and the `agentdeck run` session if any."""

    key: str
    session: str | None = None

    @property
    def ledger_key(self) -> str:
        return self.session or self.key


class Refusal(Exception):
    """The gateway answers the call itself (status, message, code, extra headers)."""

    def __init__(self, status: int, message: str, code: str | None = None, headers: dict[str, str] | None = None,
                 param: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.headers, self.param = status, message, code, headers or {}, param


@dataclass(slots=True)
class Seen:
    """What the stages learned before a refusal: the answer's headers and who was calling."""

    headers: dict[str, str]
    ident: Identity | None = None
    model_requested: str | None = None
    route_tier: str | None = None
    stream: bool = False


@dataclass(slots=True)
class Call:
    """Everything known about one admitted call."""

    wire: WireProtocol
    endpoint: Endpoint
    rid: str
    t0: float
    headers: dict[str, str]
    forward: dict[str, str]
    query: str
    """The client's query string (Claude Code sends ?beta=true), passed on as sent; Gemini's ?key= never."""
    ident: Identity
    parsed: ParsedRequest
    route: Route
    provider: str
    max_tokens: int
    context_tokens: int
    usage: Usage = field(default_factory=Usage)
    cost: float = 0.0
    estimated: bool = False
    status: int = 0
    error: str | None = None
    attempts: int = 0
    fallback_from: str | None = None
    escalations: list[str] = field(default_factory=list)
    reservations: list["Reservation"] = field(default_factory=list)
    response_text: bytes | None = None
    failure: StreamFailure | None = None

    @property
    def out_headers(self) -> dict[str, str]:
        """The three x-agentdeck-* headers every answer carries (for a refusal the gateway builds)."""
        return {"x-agentdeck-request-id": self.rid, "x-agentdeck-model": header_value(self.route.model),
                "x-agentdeck-tier": self.route.tier or NO_TIER}

    def raw_out_headers(self) -> list[tuple[bytes, bytes]]:
        """The same, encoded, for a provider's answer (whose own headers are passed on as raw bytes)."""
        return [(b"x-agentdeck-request-id", self.rid.encode("latin-1")),
                (b"x-agentdeck-model", header_value(self.route.model).encode("latin-1")),
                (b"x-agentdeck-tier", (self.route.tier or NO_TIER).encode("latin-1"))]
