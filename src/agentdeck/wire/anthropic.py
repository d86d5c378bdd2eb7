"""Anthropic messages (``POST /v1/messages``) and ``/v1/messages/count_tokens``."""

from __future__ import annotations

from typing import Any

import orjson

from agentdeck.pricing import Usage
from agentdeck.wire.base import (MeterBase, ParsedRequest, StreamFailure, as_dict, as_int, event_json, optional_bool,
                                 optional_pos_int, require_model)
from agentdeck.wire.endpoints import Endpoint
from agentdeck.wire.sse import SSEEvent

_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error", 500: "api_error",
                529: "overloaded_error"}
_STATUS_OF_TYPE = {v: k for k, v in _ERROR_TYPES.items()}
_TEXT_FIELDS = ("text", "partial_json", "thinking")


def usage_of(u: Any) -> Usage | None:
    """Anthropic usage: input_tokens excludes cache reads and writes, which are counted apart."""
    if not isinstance(u, dict):
        return None
    return Usage(
        input_tokens=as_int(u.get("input_tokens")),
        output_tokens=as_int(u.get("output_tokens")),
        cache_read_tokens=as_int(u.get("cache_read_input_tokens")),
        cache_write_tokens=as_int(u.get("cache_creation_input_tokens")),
        cache_write_1h_tokens=as_int(as_dict(u.get("cache_creation")).get("ephemeral_1h_input_tokens")),
    )


def _merge(into: Usage, u: dict[str, Any]) -> None:
    """message_delta's usage: a cumulative output count, and input/cache fields it may repeat."""
    if "output_tokens" in u:
        into.output_tokens = as_int(u["output_tokens"])
    if as_int(u.get("input_tokens")):
        into.input_tokens = as_int(u["input_tokens"])
    if as_int(u.get("cache_read_input_tokens")):
        into.cache_read_tokens = as_int(u["cache_read_input_tokens"])
    if as_int(u.get("cache_creation_input_tokens")):
        into.cache_write_tokens = as_int(u["cache_creation_input_tokens"])


class MessagesMeter(MeterBase):
    """Reads usage from message_start (input side) and message_delta (cumulative output)."""

    __slots__ = ()

    def __init__(self, p: ParsedRequest) -> None:
        super().__init__()

    def feed(self, ev: SSEEvent) -> bytes | None:
        obj = event_json(ev.data)
        if obj is None:
            return ev.raw
        kind = obj.get("type")
        if kind == "content_block_delta":
            delta = as_dict(obj.get("delta"))
            for name in _TEXT_FIELDS:
                v = delta.get(name)
                if isinstance(v, str):
                    self.text_chars += len(v)
        elif kind == "message_start":
            self.usage = usage_of(as_dict(obj.get("message")).get("usage")) or Usage()
        elif kind == "message_delta":
            if self.usage is None:
                self.usage = Usage()
            _merge(self.usage, as_dict(obj.get("usage")))
        elif kind == "message_stop":
            self.done = True
        elif kind == "error" or ev.event == "error":
            err = as_dict(obj.get("error"))
            etype = str(err.get("type") or "api_error")
            self.failure = StreamFailure(_STATUS_OF_TYPE.get(etype, 500), etype, str(err.get("message") or "")[:300])
        return ev.raw


class AnthropicMessages:
    """The messages protocol object (see ``WireProtocol``); count_tokens shares it."""

    name = "anthropic"

    def parse(self, endpoint: Endpoint, body: dict[str, Any], raw: bytes) -> ParsedRequest:
        model = require_model(body)
        if endpoint is Endpoint.COUNT_TOKENS:
            return ParsedRequest(endpoint, body, raw, model, False, None)
        stream = optional_bool(body, "stream")
        limit = optional_pos_int(body, "max_tokens")
        floor = None
        thinking = body.get("thinking")
        if isinstance(thinking, dict):
            budget = thinking.get("budget_tokens")
            if isinstance(budget, int) and not isinstance(budget, bool) and budget > 0:
                floor = budget + 1  # Anthropic requires max_tokens > thinking.budget_tokens
        return ParsedRequest(endpoint, body, raw, model, stream, limit, "max_tokens" if limit is not None else None,
                             min_tokens=floor)

    def patch(self, p: ParsedRequest, model: str, max_tokens: int) -> bytes:
        """Change the model if routed and ``max_tokens`` if capped. A body without ``max_tokens`` is
        forwarded without one: the provider requires it and says so in its own words."""
        changes: dict[str, Any] = {}
        if model != p.model:
            changes["model"] = model
        if p.limit_field is not None and max_tokens != p.max_tokens:
            changes["max_tokens"] = max_tokens
        if not changes:
            return p.raw
        return orjson.dumps({**p.body, **changes})

    def meter(self, p: ParsedRequest) -> MessagesMeter:
        return MessagesMeter(p)

    def usage_from_json(self, body: Any) -> Usage | None:
        return usage_of(body.get("usage")) if isinstance(body, dict) else None

    def error_body(self, status: int, message: str, code: str | None = None, param: str | None = None) -> bytes:
        """Anthropic's error shape; agentdeck's own code (``budget_exceeded``, ...) rides along as ``error.code``.

        The SDKs ignore the extra field; scripts and people can tell a budget refusal from a stop.
        """
        etype = _ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
        err: dict[str, str] = {"type": etype, "message": message}
        if code:
            err["code"] = code
        return orjson.dumps({"type": "error", "error": err})

    def stream_error_event(self, message: str, code: str) -> bytes:
        etype = "permission_error" if code in ("agentdeck_stopped", "budget_exceeded") else "api_error"
        return b"event: error\ndata: " + orjson.dumps({"type": "error", "error": {"type": etype, "message": message}}) + b"\n\n"

    def auth_headers(self, api_key: str) -> dict[str, str]:
        return {"x-api-key": api_key}


PROTOCOL = AnthropicMessages()
