"""The OpenAI Responses API (``POST /v1/responses``), which Codex speaks."""

from __future__ import annotations

from typing import Any

import orjson

from agentdeck.pricing import Usage
from agentdeck.wire import openai_errors
from agentdeck.wire.base import (MeterBase, ParsedRequest, as_dict, as_int, event_json, optional_bool, optional_pos_int,
                                 require_model)
from agentdeck.wire.endpoints import Endpoint
from agentdeck.wire.sse import SSEEvent

_FINAL = frozenset({"response.completed", "response.incomplete"})


def usage_of(u: Any) -> Usage | None:
    if not isinstance(u, dict):
        return None
    total_in = as_int(u.get("input_tokens"))
    cached = min(as_int(as_dict(u.get("input_tokens_details")).get("cached_tokens")), total_in)
    return Usage(input_tokens=total_in - cached, output_tokens=as_int(u.get("output_tokens")), cache_read_tokens=cached,
                 reasoning_tokens=as_int(as_dict(u.get("output_tokens_details")).get("reasoning_tokens")))


class ResponsesMeter(MeterBase):
    """Reads the final usage from ``response.completed`` and counts every ``*.delta`` on the way."""

    __slots__ = ()

    def __init__(self, p: ParsedRequest) -> None:
        super().__init__()

    def feed(self, ev: SSEEvent) -> bytes | None:
        obj = event_json(ev.data)
        if obj is None:
            return ev.raw
        kind = obj.get("type")
        if not isinstance(kind, str):
            kind = ev.event or ""
        if kind.endswith(".delta"):
            delta = obj.get("delta")
            if isinstance(delta, str):
                self.text_chars += len(delta)
        elif kind in _FINAL:
            self.usage = usage_of(as_dict(obj.get("response")).get("usage"))
            self.done = True
        elif kind == "response.failed":
            resp = as_dict(obj.get("response"))
            self.usage = usage_of(resp.get("usage"))
            self.failure = openai_errors.failure_of(resp.get("error"))
        elif kind == "error":
            self.failure = openai_errors.failure_of(obj.get("error") if "error" in obj else obj)
        return ev.raw


class OpenAIResponses:
    """The Responses protocol object (see ``WireProtocol``)."""

    name = "openai"
    error_body = staticmethod(openai_errors.error_body)
    auth_headers = staticmethod(openai_errors.auth_headers)

    def parse(self, endpoint: Endpoint, body: dict[str, Any], raw: bytes) -> ParsedRequest:
        model = require_model(body)
        stream = optional_bool(body, "stream")
        limit = optional_pos_int(body, "max_output_tokens")
        return ParsedRequest(endpoint, body, raw, model, stream, limit, "max_output_tokens" if limit is not None else None)

    def patch(self, p: ParsedRequest, model: str, max_tokens: int) -> bytes:
        changes: dict[str, Any] = {}
        if model != p.model:
            changes["model"] = model
        if max_tokens != p.max_tokens:
            changes["max_output_tokens"] = max_tokens
        if not changes:
            return p.raw
        return orjson.dumps({**p.body, **changes})

    def meter(self, p: ParsedRequest) -> ResponsesMeter:
        return ResponsesMeter(p)

    def usage_from_json(self, body: Any) -> Usage | None:
        return usage_of(body.get("usage")) if isinstance(body, dict) else None

    def stream_error_event(self, message: str, code: str) -> bytes:
        """The Responses error event (type, code, message), with an ``error`` object too: the OpenAI SDK
        raises on an ``error`` event only when its data carries one."""
        err = {"message": message, "type": "server_error", "param": None, "code": code}
        return b"event: error\ndata: " + orjson.dumps({"type": "error", "code": code, "message": message,
                                                       "param": None, "error": err}) + b"\n\n"


PROTOCOL = OpenAIResponses()
