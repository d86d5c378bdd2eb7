"""The OpenAI wire format: chat completions and the Responses API."""

from __future__ import annotations

import re
from typing import Any

import orjson

from agentdeck.gateway.wire import (
    sse_data_json,
    BadRequest,
    ParsedRequest,
    optional_bool,
    optional_number,
    optional_pos_int,
    require_list,
    require_str,
)
from agentdeck.pricing import Usage

NAME = "openai"
_TEXT_RE = re.compile(rb'"(?:content|delta|text)":"((?:[^"\\]|\\.)*)"')
_ERROR_TYPES = {400: "invalid_request_error", 401: "invalid_request_error", 403: "permission_denied",
                404: "invalid_request_error", 413: "invalid_request_error", 429: "rate_limit_exceeded",
                500: "server_error", 502: "server_error", 503: "server_error"}


def parse(endpoint: str, body: dict[str, Any]) -> ParsedRequest:
    model = require_str(body, "model")
    stream = optional_bool(body, "stream")
    optional_number(body, "temperature", 0, 2)
    optional_number(body, "top_p", 0, 1)
    if endpoint == "/v1/chat/completions":
        msgs = require_list(body, "messages")
        if not msgs:
            raise BadRequest("'messages' must not be empty", "messages")
        for i, m in enumerate(msgs):
            if not isinstance(m, dict) or not isinstance(m.get("role"), str):
                raise BadRequest(f"'messages[{i}]' must be an object with a string 'role'", f"messages[{i}]")
        max_tokens = optional_pos_int(body, "max_completion_tokens") or optional_pos_int(body, "max_tokens")
        so = body.get("stream_options")
        if so is not None and not isinstance(so, dict):
            raise BadRequest("'stream_options' must be an object", "stream_options")
        wants_usage = bool(so and so.get("include_usage"))
        return ParsedRequest(endpoint, body, model, stream, max_tokens, wants_usage)
    # /v1/responses
    inp = body.get("input")
    if inp is None:
        raise BadRequest("'input' is required", "input")
    if not isinstance(inp, (str, list)):
        raise BadRequest("'input' must be a string or an array", "input")
    return ParsedRequest(endpoint, body, model, stream, optional_pos_int(body, "max_output_tokens"))


def upstream_body(p: ParsedRequest, model: str, max_tokens: int) -> bytes:
    """The body sent upstream: the routed model, the capped max tokens, and usage asked for on streams."""
    body = dict(p.body)
    body["model"] = model
    if p.endpoint == "/v1/chat/completions":
        key = "max_completion_tokens" if "max_completion_tokens" in body else "max_tokens"
        body[key] = max_tokens
        if p.stream:
            so = dict(body.get("stream_options") or {})
            so["include_usage"] = True
            body["stream_options"] = so
    else:
        body["max_output_tokens"] = max_tokens
    return orjson.dumps(body)


def auth_headers(api_key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {api_key}"}


def error_body(status: int, message: str, code: str | None = None, param: str | None = None) -> bytes:
    return orjson.dumps({"error": {"message": message, "type": _ERROR_TYPES.get(status, "invalid_request_error"),
                                   "param": param, "code": code}})


def stream_error_event(message: str, code: str) -> bytes:
    return b"data: " + orjson.dumps({"error": {"message": message, "type": "server_error", "param": None, "code": code}}) + b"\n\n"


def _usage_from(u: dict[str, Any] | None, responses: bool) -> Usage | None:
    if not isinstance(u, dict):
        return None
    if responses:
        total_in = int(u.get("input_tokens") or 0)
        cached = int((u.get("input_tokens_details") or {}).get("cached_tokens") or 0)
        out = int(u.get("output_tokens") or 0)
    else:
        total_in = int(u.get("prompt_tokens") or 0)
        cached = int((u.get("prompt_tokens_details") or {}).get("cached_tokens") or 0)
        out = int(u.get("completion_tokens") or 0)
    return Usage(input_tokens=max(total_in - cached, 0), output_tokens=out, cache_read_tokens=cached)


def usage_from_json(endpoint: str, body: dict[str, Any]) -> Usage | None:
    return _usage_from(body.get("usage"), endpoint == "/v1/responses")


class StreamMeter:
    """Reads usage out of an SSE stream event by event, and hides the usage chunk the client did not ask for."""

    __slots__ = ("responses", "hide_usage", "usage", "text_bytes", "done")

    def __init__(self, p: ParsedRequest) -> None:
        self.responses = p.endpoint == "/v1/responses"
        self.hide_usage = not self.responses and not p.wants_stream_usage
        self.usage: Usage | None = None
        self.text_bytes = 0
        self.done = False

    def feed(self, event: bytes) -> bytes | None:
        """Return the bytes to forward for this event (None to drop it)."""
        if self.responses:
            if b'"response.completed"' in event or b'"response.incomplete"' in event:
                data = sse_data_json(event)
                if data:
                    self.usage = _usage_from((data.get("response") or {}).get("usage"), True)
                    self.done = True
            elif b"output_text.delta" in event:
                self._count_text(event)
            return event
        if b"[DONE]" in event:
            self.done = True
            return event
        if b'"usage":{' in event or b'"usage": {' in event:
            data = sse_data_json(event)
            if data:
                self.usage = _usage_from(data.get("usage"), False)
                if self.hide_usage and not data.get("choices"):
                    return None
        else:
            self._count_text(event)
        if self.hide_usage:
            event = event.replace(b',"usage":null', b"").replace(b', "usage": null', b"")
        return event

    def _count_text(self, event: bytes) -> None:
        for m in _TEXT_RE.finditer(event):
            self.text_bytes += len(m.group(1))

