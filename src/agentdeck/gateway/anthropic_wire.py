"""The Anthropic wire format: messages and count_tokens."""

from __future__ import annotations

import re
from typing import Any

import orjson

from agentdeck.gateway.wire import BadRequest, ParsedRequest, optional_bool, optional_number, require_list, require_str, sse_data_json
from agentdeck.pricing import Usage

NAME = "anthropic"
_TEXT_RE = re.compile(rb'"(?:text|partial_json|thinking)":"((?:[^"\\]|\\.)*)"')
_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error", 500: "api_error",
                529: "overloaded_error"}


def parse(endpoint: str, body: dict[str, Any]) -> ParsedRequest:
    model = require_str(body, "model")
    msgs = require_list(body, "messages")
    for i, m in enumerate(msgs):
        if not isinstance(m, dict) or m.get("role") not in ("user", "assistant"):
            raise BadRequest(f"'messages[{i}].role' must be 'user' or 'assistant'", f"messages[{i}].role")
    if endpoint == "/v1/messages/count_tokens":
        return ParsedRequest(endpoint, body, model, False, None)
    if not msgs:
        raise BadRequest("'messages' must not be empty", "messages")
    stream = optional_bool(body, "stream")
    optional_number(body, "temperature", 0, 1)
    mt = body.get("max_tokens")
    if mt is None:
        raise BadRequest("'max_tokens' is required", "max_tokens")
    if isinstance(mt, bool) or not isinstance(mt, int) or mt < 1:
        raise BadRequest("'max_tokens' must be a positive integer", "max_tokens")
    return ParsedRequest(endpoint, body, model, stream, mt)


def upstream_body(p: ParsedRequest, model: str, max_tokens: int) -> bytes:
    body = dict(p.body)
    body["model"] = model
    if p.endpoint == "/v1/messages":
        body["max_tokens"] = max_tokens
    return orjson.dumps(body)


def auth_headers(api_key: str) -> dict[str, str]:
    return {"x-api-key": api_key}


def error_body(status: int, message: str, code: str | None = None, param: str | None = None) -> bytes:
    """Anthropic's error shape; agentdeck's own code (``budget_exceeded``, ...) rides along as ``error.code``.

    The SDKs ignore the extra field; scripts and people can tell a budget refusal from a stop.
    """
    etype = _ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    err: dict[str, str] = {"type": etype, "message": message}
    if code:
        err["code"] = code
    return orjson.dumps({"type": "error", "error": err})


def stream_error_event(message: str, code: str) -> bytes:
    etype = "permission_error" if code in ("agentdeck_stopped", "budget_exceeded") else "api_error"
    return b"event: error\ndata: " + orjson.dumps({"type": "error", "error": {"type": etype, "message": message}}) + b"\n\n"


def _usage_from(u: dict[str, Any] | None) -> Usage | None:
    if not isinstance(u, dict):
        return None
    return Usage(
        input_tokens=int(u.get("input_tokens") or 0),
        output_tokens=int(u.get("output_tokens") or 0),
        cache_read_tokens=int(u.get("cache_read_input_tokens") or 0),
        cache_write_tokens=int(u.get("cache_creation_input_tokens") or 0),
    )


def usage_from_json(endpoint: str, body: dict[str, Any]) -> Usage | None:
    return _usage_from(body.get("usage"))


class StreamMeter:
    """Reads usage from message_start (input side) and message_delta (cumulative output)."""

    __slots__ = ("usage", "text_bytes", "done")

    def __init__(self, p: ParsedRequest) -> None:
        self.usage: Usage | None = None
        self.text_bytes = 0
        self.done = False

    def feed(self, event: bytes) -> bytes | None:
        if b"content_block_delta" in event:
            for m in _TEXT_RE.finditer(event):
                self.text_bytes += len(m.group(1))
        elif b"message_start" in event or b"message_delta" in event:
            data = sse_data_json(event)
            if data:
                if data.get("type") == "message_start":
                    self.usage = _usage_from((data.get("message") or {}).get("usage")) or Usage()
                elif data.get("type") == "message_delta":
                    u = data.get("usage") or {}
                    if self.usage is None:
                        self.usage = Usage()
                    if "output_tokens" in u:
                        self.usage.output_tokens = int(u["output_tokens"] or 0)
                    if u.get("input_tokens"):
                        self.usage.input_tokens = int(u["input_tokens"])
                    if u.get("cache_read_input_tokens"):
                        self.usage.cache_read_tokens = int(u["cache_read_input_tokens"])
                    if u.get("cache_creation_input_tokens"):
                        self.usage.cache_write_tokens = int(u["cache_creation_input_tokens"])
        elif b"message_stop" in event:
            self.done = True
        return event

