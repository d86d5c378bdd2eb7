"""What the mock answers: the deterministic text, token counts, usage and the JSON bodies.

Why apart from the streams and the server: a non-streamed answer and a stream carry the same
facts (text, usage, stop reason, error shape); they are computed here once, as plain data.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import os
import random
import re
import time
from dataclasses import dataclass
from typing import Any

import orjson

from agentdeck.sim.mock.settings import Magic

OPENAI = "openai"
ANTHROPIC = "anthropic"

_TEXT_KEYS = frozenset({"content", "text", "system", "input", "instructions", "arguments", "output", "thinking"})


def _chars(obj: Any) -> int:
    """Characters of message text in a request fragment (strings under text-bearing keys)."""
    if isinstance(obj, str):
        return len(obj)
    if isinstance(obj, list):
        return sum(_chars(x) for x in obj)
    if isinstance(obj, dict):
        n = 0
        for k, v in obj.items():
            if k in _TEXT_KEYS:
                n += _chars(v)
        return n
    return 0


def estimate_tokens(body: dict[str, Any]) -> int:
    """Deterministic input-token estimate: ~4 characters per token over all message text
    (system/instructions included, tool definitions as JSON), at least 1."""
    n = _chars(body.get("messages")) + _chars(body.get("system")) + _chars(body.get("input")) + _chars(body.get("instructions"))
    tools = body.get("tools")
    if tools:
        try:
            n += len(orjson.dumps(tools))
        except TypeError:
            pass
    return max(1, (n + 3) // 4)


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for p in content:
            if isinstance(p, str):
                parts.append(p)
            elif isinstance(p, dict) and isinstance(p.get("text"), str):
                parts.append(p["text"])
        return " ".join(parts)
    return ""


def last_user_text(body: dict[str, Any]) -> str:
    """Text of the last user message (chat/messages ``messages`` or Responses ``input``)."""
    msgs = body.get("messages")
    if msgs is None:
        msgs = body.get("input")
        if isinstance(msgs, str):
            return msgs
    if isinstance(msgs, list):
        for msg in reversed(msgs):
            if isinstance(msg, dict) and msg.get("role", "user") == "user" and "content" in msg:
                return _text_of(msg["content"])
    return ""


_LOREM = (
    "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore "
    "et dolore magna aliqua enim ad minim veniam quis nostrud exercitation ullamco laboris nisi aliquip "
    "ex ea commodo consequat duis aute irure in reprehenderit voluptate velit esse cillum fugiat nulla "
    "pariatur excepteur sint occaecat cupidatat non proident sunt culpa qui officia deserunt mollit anim "
    "id est laborum"
).split()
SEQ_LEN = 2048


def word_sequence(seed: int) -> list[str]:
    rng = random.Random(seed)
    return [rng.choice(_LOREM) for _ in range(SEQ_LEN)]


@dataclass
class Answer:
    """What the model 'writes' for one request: the text split into streamed pieces + counts."""

    pieces: list[str]
    text: str
    output_tokens: int       # visible + reasoning
    reasoning_tokens: int
    truncated: bool


def split_even(text: str, n: int) -> list[str]:
    if n <= 1 or len(text) <= 1:
        return [text] if text else []
    n = min(n, len(text))
    step = len(text) / n
    return [text[round(i * step): round((i + 1) * step)] for i in range(n)]


_ID_PREFIX = os.urandom(6).hex()
_ID_COUNTER = itertools.count(1)


def hexid(n: int = 24) -> str:
    """A unique hex id of n digits: random per process + a counter (no syscall per id)."""
    return f"{_ID_PREFIX}{next(_ID_COUNTER):0{n - 12}x}"


_ANTHROPIC_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}

_OPENAI_ERROR_TYPES = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("permission_denied", None),
    404: ("invalid_request_error", "not_found"),
    413: ("invalid_request_error", "request_too_large"),
    429: ("requests", "rate_limit_exceeded"),
}


def anthropic_error_body(status: int, message: str, request_id: str) -> bytes:
    etype = _ANTHROPIC_ERROR_TYPES.get(status) or ("api_error" if status >= 500 else "invalid_request_error")
    return orjson.dumps({"type": "error", "error": {"type": etype, "message": message}, "request_id": request_id})


def openai_error_body(status: int, message: str, param: str | None = None) -> bytes:
    etype, code = _OPENAI_ERROR_TYPES.get(status) or (("server_error", None) if status >= 500 else ("invalid_request_error", None))
    return orjson.dumps({"error": {"message": message, "type": etype, "param": param, "code": code}})


def default_message(status: int, protocol: str) -> str:
    return {
        400: "Invalid request.",
        401: "Invalid API key.",
        403: "You do not have permission to do this.",
        404: "Not found.",
        413: "Request too large.",
        429: "Rate limit reached for requests (mock provider). Please try again later.",
        500: "Internal server error (mock provider).",
        503: "The server is overloaded (mock provider). Please try again later.",
        529: "Overloaded" if protocol == ANTHROPIC else "The engine is currently overloaded (mock provider).",
    }.get(status, f"Mock provider answered {status}.")


def chat_usage(prompt: int, completion: int, cached: int, reasoning: int) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": reasoning,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def responses_usage(inp: int, out: int, cached: int, reasoning: int) -> dict[str, Any]:
    return {
        "input_tokens": inp,
        "input_tokens_details": {"cached_tokens": cached},
        "output_tokens": out,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": inp + out,
    }


MODEL_IDS = ("gpt-4o-mini", "gpt-4o", "gpt-4.1", "gpt-4.1-mini", "gpt-5", "gpt-5-mini",
             "claude-haiku-4-5", "claude-sonnet-4-5", "claude-opus-4-5")


def models_body(anthropic: bool, dated: bool = False) -> bytes:
    """`GET /v1/models` in the protocol's own list shape (dated snapshot IDs when `dated`)."""
    if anthropic:
        data = [{"type": "model", "id": dated_model(i, True) if dated else i, "display_name": i, "created_at": "2025-01-01T00:00:00Z"}
                for i in MODEL_IDS if i.startswith("claude")]
        body: dict[str, Any] = {"data": data, "has_more": False, "first_id": data[0]["id"], "last_id": data[-1]["id"]}
    else:
        body = {"object": "list", "data": [{"id": dated_model(i, False) if dated else i, "object": "model", "created": 1735689600,
                                            "owned_by": "mock"} for i in MODEL_IDS]}
    return orjson.dumps(body)


def ends_with_tool_result(body: dict[str, Any]) -> bool:
    """The last turn hands back a tool's result (OpenAI role "tool", Anthropic tool_result blocks)."""
    msgs = body.get("messages")
    if not isinstance(msgs, list) or not msgs or not isinstance(msgs[-1], dict):
        return False
    last = msgs[-1]
    if last.get("role") == "tool":
        return True
    content = last.get("content")
    return isinstance(content, list) and any(isinstance(b, dict) and b.get("type") == "tool_result" for b in content)


def chat_tool_call(ans: Answer) -> dict[str, Any]:
    return {"id": "call_" + hexid(), "type": "function",
            "function": {"name": TOOL_NAME, "arguments": orjson.dumps(tool_input(ans)).decode()}}


def chat_body(model: str, input_tokens: int, ans: Answer, magic: Magic, tool_use: bool = False) -> bytes:
    cached = min(magic.cached, input_tokens)
    message: dict[str, Any] = {"role": "assistant", "content": ans.text, "refusal": None, "annotations": []}
    if tool_use:
        message["tool_calls"] = [chat_tool_call(ans)]
    return orjson.dumps({
        "id": "chatcmpl-" + hexid(),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{
            "index": 0,
            "message": message,
            "logprobs": None,
            "finish_reason": "length" if ans.truncated else "tool_calls" if tool_use else "stop",
        }],
        "usage": chat_usage(input_tokens, ans.output_tokens, cached, ans.reasoning_tokens),
        "service_tier": "default",
        "system_fingerprint": "fp_mock",
    })


def responses_obj(model: str, input_tokens: int, ans: Answer, magic: Magic, body: dict[str, Any],
                  resp_id: str, msg_id: str, created: int, done: bool = True,
                  reasoning_id: str | None = None) -> dict[str, Any]:
    """A Responses API object; with `reasoning_id` its output opens with a reasoning item."""
    output: list[dict[str, Any]] = []
    if done and reasoning_id is not None:
        output.append(reasoning_item(reasoning_id))
    if done:
        output.append({
            "id": msg_id, "type": "message", "status": "incomplete" if ans.truncated else "completed", "role": "assistant",
            "content": [{"type": "output_text", "annotations": [], "logprobs": [], "text": ans.text}],
        })
    status = ("incomplete" if ans.truncated else "completed") if done else "in_progress"
    return {
        "id": resp_id,
        "object": "response",
        "created_at": created,
        "status": status,
        "background": False,
        "error": None,
        "incomplete_details": {"reason": "max_output_tokens"} if (done and ans.truncated) else None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "model": model,
        "output": output,
        "parallel_tool_calls": True,
        "previous_response_id": body.get("previous_response_id"),
        "reasoning": {"effort": None, "summary": None},
        "service_tier": "default",
        "store": body.get("store", True),
        "temperature": body.get("temperature", 1.0),
        "text": {"format": {"type": "text"}, "verbosity": "medium"},
        "tool_choice": "auto",
        "tools": [],
        "top_p": body.get("top_p", 1.0),
        "truncation": "disabled",
        "usage": responses_usage(input_tokens, ans.output_tokens, min(magic.cached, input_tokens), ans.reasoning_tokens) if done else None,
        "user": None,
        "metadata": body.get("metadata") or {},
    }


def anthropic_usage(input_tokens: int, magic: Magic) -> tuple[int, int, int]:
    """(input_tokens, cache_creation, cache_read): input_tokens excludes the cached parts."""
    read = min(magic.cached, input_tokens)
    write = min(magic.cache_write, input_tokens - read)
    return input_tokens - read - write, write, read


def messages_body(model: str, input_tokens: int, ans: Answer, magic: Magic,
                  thinking: bool = False, tool_use: bool = False) -> bytes:
    """A Messages API answer: [thinking,] text[, tool_use] blocks and the cache-split usage."""
    inp, write, read = anthropic_usage(input_tokens, magic)
    content: list[dict[str, Any]] = []
    if thinking:
        text = thinking_text(ans.reasoning_tokens)
        content.append({"type": "thinking", "thinking": text, "signature": thinking_signature(text)})
    content.append({"type": "text", "text": ans.text})
    if tool_use:
        content.append(tool_use_block(ans, with_input=True))
    return orjson.dumps({
        "id": "msg_" + hexid(),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": anthropic_stop_reason(ans, tool_use),
        "stop_sequence": None,
        "usage": {
            "input_tokens": inp,
            "cache_creation_input_tokens": write,
            "cache_read_input_tokens": read,
            "output_tokens": ans.output_tokens,
            "service_tier": "standard",
        },
    })


def anthropic_stop_reason(ans: Answer, tool_use: bool) -> str:
    return "max_tokens" if ans.truncated else "tool_use" if tool_use else "end_turn"


def reasoning_item(item_id: str) -> dict[str, Any]:
    """A Responses reasoning output item, as reasoning models put before their message."""
    return {"id": item_id, "type": "reasoning", "summary": []}


_THINKING_WORDS_MAX = 256


def thinking_text(tokens: int) -> str:
    """Deterministic thinking text of about `tokens` words (capped: the count, not the text, matters)."""
    n = max(1, min(tokens, _THINKING_WORDS_MAX))
    return "Let me think. " + " ".join(_LOREM[i % len(_LOREM)] for i in range(n))


def thinking_signature(text: str) -> str:
    """An opaque base64 signature, as Anthropic sends in signature_delta (here a hash of the text)."""
    return base64.b64encode(hashlib.sha256(text.encode()).digest() * 3).decode()


TOOL_NAME = "lookup"


def tool_input(ans: Answer) -> dict[str, Any]:
    """The tool call's arguments: a query made of the answer's first words."""
    return {"query": " ".join(ans.text.split()[:6]) or "nothing"}


def tool_use_block(ans: Answer, with_input: bool) -> dict[str, Any]:
    """A tool_use content block; streamed blocks start with an empty input (filled by input_json_delta)."""
    return {"type": "tool_use", "id": "toolu_" + hexid(), "name": TOOL_NAME, "input": tool_input(ans) if with_input else {}}


_DATED = re.compile(r"(?:\d{8}|\d{4}-\d{2}-\d{2})$")


def dated_model(model: str, anthropic: bool) -> str:
    """The dated snapshot a provider names in its answer (`claude-sonnet-4-5` -> `...-20250929`)."""
    if _DATED.search(model):
        return model
    return model + ("-20250929" if anthropic else "-2025-08-07")


GEMINI_MODEL_IDS = ("gemini-2.5-flash", "gemini-2.5-flash-lite", "gemini-2.5-pro")
_GEMINI_VERSIONED = re.compile(r"-(?:\d{3}|\d{2}-\d{2}|\d{2}-\d{4}|latest)$")


def gemini_dated_model(model: str) -> str:
    """The versioned ID Google names in `modelVersion` for a model alias: its stable version, `-001`
    (`gemini-2.5-flash` -> `gemini-2.5-flash-001`); an ID that already names a version or a dated
    preview (`gemini-2.5-flash-preview-09-2025`, `...-preview-05-20`), or `-latest`, is kept."""
    if _GEMINI_VERSIONED.search(model):
        return model
    return model + "-001"


def gemini_models_body(dated: bool = False) -> bytes:
    """`GET /v1beta/models` in Google's shape (`models/ID` names; versioned IDs when `dated`)."""
    models = []
    for i in GEMINI_MODEL_IDS:
        mid = gemini_dated_model(i) if dated else i
        models.append({"name": f"models/{mid}", "version": "001", "displayName": i.replace("-", " ").title(),
                       "inputTokenLimit": 1048576, "outputTokenLimit": 65536,
                       "supportedGenerationMethods": ["generateContent", "countTokens"]})
    return orjson.dumps({"models": models})
