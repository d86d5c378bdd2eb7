"""Admission: who is calling, what the body says, and whether the call may go at all.

Order matters and is part of the contract: the emergency stop answers every call the
same 403 whatever it asked for, so it is checked before an unknown model's 404; the
caps come last because they depend on the model the routing stage chose.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import orjson

from agentdeck.budget import clamp_max_tokens
from agentdeck.budget.anomaly import AnomalyDetector
from agentdeck.budget.sessions import Session
from agentdeck.config import CapsConfig, KeyConfig
from agentdeck.gateway.call import Identity, Refusal, Seen, header_value
from agentdeck.gateway.http import BodyTooLarge, Receive, read_body
from agentdeck.limits.headers import retry_hint_headers
from agentdeck.state import SessionState, StopState
from agentdeck.wire import BadRequest, Endpoint, ParsedRequest, WireProtocol

MAX_JSON_DEPTH = 254
"""Deepest nesting of a request body the gateway accepts (400 above): orjson serialises no deeper,
and a body the gateway cannot re-serialise could not be capped, logged or forwarded safely."""


def caller_secret(headers: dict[str, str]) -> str:
    """The gateway key of a call: ``Authorization: Bearer KEY``, else ``x-api-key: KEY``."""
    auth = headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    return headers.get("x-api-key", "")


def too_deep(raw: bytes, body: Any) -> bool:
    """True when ``body`` nests deeper than MAX_JSON_DEPTH. Two byte counts settle almost every
    body; only one with that many brackets is test-serialised (orjson stops at its depth limit)."""
    if raw.count(b"{") + raw.count(b"[") <= MAX_JSON_DEPTH:
        return False
    try:
        orjson.dumps(body)
    except orjson.JSONEncodeError:
        return True
    return False


@dataclass(slots=True)
class TokenCaps:
    """The output cap of a call: the caller's limit clamped to the model's share, never below what
    the provider requires (Anthropic: above ``thinking.budget_tokens``)."""

    caps: CapsConfig
    output_limit: Callable[[str], int | None]

    def max_tokens(self, model: str, parsed: ParsedRequest) -> int:
        return clamp_max_tokens(parsed.max_tokens, self.output_limit(model), self.caps, floor=parsed.min_tokens)


class AdmissionStage:
    """Auth, body, stop, anomaly throttle and caps; raises ``Refusal`` with the gateway's answer."""

    def __init__(self, *, keys: dict[str, KeyConfig], sessions: SessionState, open_access: bool,
                 stop: StopState, anomaly: AnomalyDetector, throttle_rps: float, caps: TokenCaps,
                 max_body_bytes: int) -> None:
        self._keys = keys
        self._sessions = sessions
        self._open = open_access
        self._stop = stop
        self._anomaly = anomaly
        self._throttle_rps = throttle_rps
        self.caps = caps
        self._max_input = caps.caps.max_input_tokens
        self._max_body = max_body_bytes

    def _known(self, secret: str) -> Identity | None:
        """A configured key, or a session this process knows: dict reads only."""
        k = self._keys.get(secret) if secret else None
        if k is not None:
            return Identity(k.name)
        s = self._sessions.lookup(secret) if secret else None
        return _session_identity(s) if s is not None else None

    def authenticate(self, secret: str) -> Identity | None:
        """Who ``secret`` is as far as this process knows (no I/O)."""
        ident = self._known(secret)
        if ident is None and self._open:
            return Identity("anonymous")
        return ident

    async def authenticate_any(self, secret: str) -> Identity | None:
        """``authenticate``, then a session another process of the cluster issued (one lookup, then cached)."""
        ident = self._known(secret)
        if ident is None and secret and self._sessions.may_fetch(secret):
            s = await self._sessions.fetch(secret)
            ident = _session_identity(s) if s is not None else None
        if ident is None and self._open:
            return Identity("anonymous")
        return ident

    def identify(self, headers: dict[str, str], seen: Seen) -> Identity | None:
        """The caller; None when only the cluster's session registry can say (then ``identify_shared``)."""
        secret = caller_secret(headers)
        ident = self._known(secret)
        if ident is None:
            if secret and self._sessions.may_fetch(secret):
                return None
            if not self._open:
                raise _unknown_key()
            ident = Identity("anonymous")
        seen.ident = ident
        return ident

    async def identify_shared(self, headers: dict[str, str], seen: Seen) -> Identity:
        """A session key this process has not seen: ask the shared registry once (a 503 while it cannot answer)."""
        ident = seen.ident = await self.authenticate_any(caller_secret(headers))
        if ident is None:
            raise _unknown_key()
        return ident

    async def read(self, receive: Receive, headers: dict[str, str], endpoint: Endpoint, wire: WireProtocol,
                   seen: Seen) -> ParsedRequest:
        """The body, checked only where governance reads it (size, JSON object, depth, the wire's fields)."""
        try:
            raw = await read_body(receive, self._max_body, headers.get("content-length"))
        except BodyTooLarge:
            raise Refusal(413, f"agentdeck: request body is larger than {self._max_body} bytes",
                          "request_too_large") from None
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError as e:
            raise Refusal(400, f"agentdeck: request body is not valid JSON ({e.msg} at position {e.pos})",
                          "invalid_json") from None
        if not isinstance(body, dict):
            raise Refusal(400, "agentdeck: request body must be a JSON object", "invalid_request")
        if too_deep(raw, body):
            raise Refusal(400, f"agentdeck: request body nests deeper than {MAX_JSON_DEPTH} levels", "invalid_request")
        try:
            parsed = wire.parse(endpoint, body, raw)
        except BadRequest as b:
            raise Refusal(b.status, f"agentdeck: {b.message}", "invalid_request", param=b.field) from None
        seen.headers["x-agentdeck-model"] = header_value(parsed.model)
        seen.model_requested, seen.stream = parsed.model, parsed.stream
        return parsed

    async def check_stop(self, ident: Identity) -> None:
        stop = await self._stop.check(ident.key, ident.session)
        if stop is not None:
            raise Refusal(403, stop.message, "agentdeck_stopped", {"x-should-retry": "false"})

    def check_limits(self, ident: Identity, context_tokens: int) -> str | None:
        """The anomaly throttle, the input cap, and a session's request limit.

        Returns the session whose call the cluster must count (then ``count_shared``), else None.
        """
        if self._anomaly.throttled(ident.ledger_key):
            raise Refusal(429, f"agentdeck: key '{ident.ledger_key}' is throttled after an anomaly alert",
                          "rate_limit_exceeded", retry_hint_headers(1.0 / self._throttle_rps))
        if context_tokens > self._max_input:
            raise Refusal(413, f"agentdeck: input of about {context_tokens} tokens is over the cap of {self._max_input} "
                               "([caps] max_input_tokens)", "input_too_large")
        if ident.session is not None:
            took = self._sessions.take_request(ident.session)
            if took is None:
                return ident.session
            if not took:
                raise _used_up(ident.session)
        return None

    async def count_shared(self, session: str) -> None:
        """Count one call of a session whose request limit is shared by the cluster."""
        if not await self._sessions.count_request(session):
            raise _used_up(session)


def _session_identity(s: Session) -> Identity:
    return Identity(s.parent_key or "session", s.name)


def _unknown_key() -> Refusal:
    return Refusal(401, "agentdeck: missing or unknown gateway key (send it as 'Authorization: Bearer KEY' "
                        "or 'x-api-key: KEY')", "invalid_api_key")


def _used_up(session: str) -> Refusal:
    return Refusal(403, f"agentdeck: session '{session}' has used all the requests it was given "
                        "(agentdeck run --max-requests); start a new session to go on",
                   "session_request_limit", {"x-should-retry": "false"})
