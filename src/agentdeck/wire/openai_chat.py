"""OpenAI chat completions (``POST /v1/chat/completions``)."""

from __future__ import annotations

from typing import Any

import orjson

from agentdeck.pricing import Usage
from agentdeck.wire import openai_errors
from agentdeck.wire.base import (MeterBase, ParsedRequest, as_dict, as_int, event_json, optional_bool, optional_pos_int,
                                 require_model)
from agentdeck.wire.endpoints import Endpoint
from agentdeck.wire.sse import SSEEvent

_USAGE_NULL = (b',"usage":null', b', "usage": null')


def usage_of(u: Any) -> Usage | None:
    """Chat usage: cached tokens are part of prompt_tokens, reasoning tokens part of completion_tokens."""
    if not isinstance(u, dict):
        return None
    total_in = as_int(u.get("prompt_tokens"))
    cached = min(as_int(as_dict(u.get("prompt_tokens_details")).get("cached_tokens")), total_in)
    return Usage(input_tokens=total_in - cached, output_tokens=as_int(u.get("completion_tokens")),
                 cache_read_tokens=cached,
                 reasoning_tokens=as_int(as_dict(u.get("completion_tokens_details")).get("reasoning_tokens")))


class ChatMeter(MeterBase):
    """Reads usage and answer size from a chat stream; hides the usage chunk the client did not ask for.

    The gateway asks for ``include_usage`` on every stream (a stream without usage cannot be
    priced exactly), so for a client that did not ask, it drops that extra chunk and the
    ``"usage": null`` it adds to the others: the client sees the stream it asked for.
    """

    __slots__ = ("hide_usage",)

    def __init__(self, p: ParsedRequest) -> None:
        super().__init__()
        self.hide_usage = not p.wants_stream_usage

    def feed(self, ev: SSEEvent) -> bytes | None:
        data = ev.data
        if data is None:
            return ev.raw
        if data == b"[DONE]":
            self.done = True
            return ev.raw
        obj = event_json(data)
        if obj is None:
            return ev.raw
        if "error" in obj and "choices" not in obj:
            self.failure = openai_errors.failure_of(obj["error"])
            return ev.raw
        choices = obj.get("choices")
        u = obj.get("usage")
        if isinstance(u, dict):
            self.usage = usage_of(u)
            if self.hide_usage and not choices:
                return None
        if isinstance(choices, list):
            for c in choices:
                self._count(as_dict(c).get("delta"))
        raw = ev.raw
        if self.hide_usage and u is None and b'"usage"' in raw:
            for pattern in _USAGE_NULL:
                raw = raw.replace(pattern, b"")
        return raw

    def _count(self, delta: Any) -> None:
        if not isinstance(delta, dict):
            return
        for name in ("content", "reasoning_content", "refusal"):
            v = delta.get(name)
            if isinstance(v, str):
                self.text_chars += len(v)
        calls = delta.get("tool_calls")
        if isinstance(calls, list):
            for call in calls:
                args = as_dict(as_dict(call).get("function")).get("arguments")
                if isinstance(args, str):
                    self.text_chars += len(args)


class OpenAIChat:
    """The chat completions protocol object (see ``WireProtocol``)."""

    name = "openai"
    error_body = staticmethod(openai_errors.error_body)
    auth_headers = staticmethod(openai_errors.auth_headers)

    def parse(self, endpoint: Endpoint, body: dict[str, Any], raw: bytes) -> ParsedRequest:
        model = require_model(body)
        stream = optional_bool(body, "stream")
        mct = optional_pos_int(body, "max_completion_tokens")
        mt = optional_pos_int(body, "max_tokens")
        if mct is not None:
            limit, field = mct, "max_completion_tokens"
        elif mt is not None:
            limit, field = mt, "max_tokens"
        else:
            limit, field = None, None
        so = body.get("stream_options")
        wants_usage = isinstance(so, dict) and so.get("include_usage") is True
        return ParsedRequest(endpoint, body, raw, model, stream, limit, field, wants_usage)

    def patch(self, p: ParsedRequest, model: str, max_tokens: int) -> bytes:
        """Change the model if routed, the token limit if capped (adding ``max_completion_tokens``,
        which every current model takes, when the client sent none), and ask for stream usage."""
        changes: dict[str, Any] = {}
        if model != p.model:
            changes["model"] = model
        if p.limit_field is None:
            changes["max_completion_tokens"] = max_tokens
        elif max_tokens != p.max_tokens:
            changes[p.limit_field] = max_tokens
        if p.stream and not p.wants_stream_usage:
            so = p.body.get("stream_options")
            if so is None or isinstance(so, dict):
                changes["stream_options"] = {**(so or {}), "include_usage": True}
        if not changes:
            return p.raw
        return orjson.dumps({**p.body, **changes})

    def meter(self, p: ParsedRequest) -> ChatMeter:
        return ChatMeter(p)

    def usage_from_json(self, body: Any) -> Usage | None:
        return usage_of(body.get("usage")) if isinstance(body, dict) else None

    def stream_error_event(self, message: str, code: str) -> bytes:
        return b"data: " + orjson.dumps({"error": {"message": message, "type": "server_error", "param": None,
                                                   "code": code}}) + b"\n\n"


PROTOCOL = OpenAIChat()
