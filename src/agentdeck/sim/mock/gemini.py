"""The mock's Gemini generateContent: `/v1beta/models/{model}:generateContent` and
`:streamGenerateContent?alt=sse` (the same under `/v1/models/`), with the same fault switches,
and `:countTokens`.

Why apart from the server's handler: Gemini differs where the others agree (the model in the
path, the key in `x-goog-api-key` or `?key=`, Google's error shape with a RetryInfo delay,
usageMetadata); the text, the magic words and the rate-limit window are shared with them.
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_to_bytes

import orjson

from agentdeck.sim.mock.answers import Answer, default_message, gemini_dated_model, gemini_models_body, hexid, tool_input
from agentdeck.sim.mock.asgi import Headers, Request, Scope, Send, send_json_status
from agentdeck.sim.mock.settings import Magic, effective_magic, parse_magic
from agentdeck.sim.mock.streams import StreamPlan, Style, send_stream
from agentdeck.wire.gemini import STATUS_NAMES, match_path

if TYPE_CHECKING:
    from agentdeck.sim.mock.server import MockState

PROTOCOL = "gemini"
TOOL_NAME = "lookup"


MODELS_PATH = "/v1beta/models"
"""Google's model list (`GET /v1/models` stays the OpenAI-style list, as at the gateway)."""


def is_gemini_path(path: str) -> bool:
    return (path.startswith(("/v1beta/models/", "/v1/models/")) and ":" in path) or path == MODELS_PATH


def error_body(status: int, message: str, retry_s: int | None = None) -> bytes:
    err: dict[str, Any] = {"code": status, "message": message,
                           "status": STATUS_NAMES.get(status, "INTERNAL" if status >= 500 else "INVALID_ARGUMENT")}
    if retry_s is not None:
        err["details"] = [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{retry_s}s"}]
    return orjson.dumps({"error": err})


def _key(scope: Scope) -> bytes:
    for k, v in scope["headers"]:
        if k == b"x-goog-api-key":
            return v.strip()
    for part in scope.get("query_string", b"").split(b"&"):
        if part.startswith(b"key="):
            return unquote_to_bytes(part[4:])
    return b""


def _texts(node: Any, out: list[str]) -> None:
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "text" and isinstance(v, str):
                out.append(v)
            elif k in ("args", "response") and isinstance(v, dict):
                out.append(orjson.dumps(v).decode())
            else:
                _texts(v, out)
    elif isinstance(node, list):
        for v in node:
            _texts(v, out)


def estimate_tokens(body: dict[str, Any]) -> int:
    """About 4 characters a token over contents, systemInstruction and tools, at least 1."""
    out: list[str] = []
    _texts(body.get("contents"), out)
    _texts(body.get("systemInstruction"), out)
    n = sum(len(t) for t in out)
    tools = body.get("tools")
    if tools:
        n += len(orjson.dumps(tools))
    return max(1, (n + 3) // 4)


def last_user_text(body: dict[str, Any]) -> str:
    contents = body.get("contents")
    if isinstance(contents, list):
        for c in reversed(contents):
            if isinstance(c, dict) and c.get("role", "user") == "user":
                parts = c.get("parts")
                if isinstance(parts, list):
                    return " ".join(p["text"] for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def _has_tool_result(body: dict[str, Any]) -> bool:
    contents = body.get("contents")
    if isinstance(contents, list) and contents and isinstance(contents[-1], dict):
        parts = contents[-1].get("parts")
        return isinstance(parts, list) and any(isinstance(p, dict) and "functionResponse" in p for p in parts)
    return False


def usage(input_tokens: int, ans: Answer, magic: Magic) -> dict[str, Any]:
    cached = min(magic.cached, input_tokens)
    visible = ans.output_tokens - ans.reasoning_tokens
    u: dict[str, Any] = {"promptTokenCount": input_tokens, "candidatesTokenCount": visible,
                         "totalTokenCount": input_tokens + ans.output_tokens}
    if ans.reasoning_tokens:
        u["thoughtsTokenCount"] = ans.reasoning_tokens
    if cached:
        u["cachedContentTokenCount"] = cached
    return u


def _finish(ans: Answer) -> str:
    return "MAX_TOKENS" if ans.truncated else "STOP"


def _call_part(ans: Answer) -> dict[str, Any]:
    return {"functionCall": {"name": TOOL_NAME, "args": tool_input(ans)}}


def generate_body(model: str, input_tokens: int, ans: Answer, magic: Magic, tool_use: bool) -> bytes:
    parts: list[dict[str, Any]] = [{"text": ans.text}]
    if tool_use:
        parts.append(_call_part(ans))
    return orjson.dumps({
        "candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": _finish(ans), "index": 0}],
        "usageMetadata": usage(input_tokens, ans, magic), "modelVersion": model, "responseId": hexid()})


def stream_plan(model: str, input_tokens: int, ans: Answer, magic: Magic, style: Style, tool_use: bool) -> StreamPlan:
    """One chunk per token (text parts), then a last chunk with the finishReason and the usage."""
    rid = hexid()
    head_obj = {"candidates": [{"content": {"role": "model", "parts": [{"text": ""}]}, "index": 0}],
                "usageMetadata": {"promptTokenCount": input_tokens, "totalTokenCount": input_tokens},
                "modelVersion": model, "responseId": rid}
    prefix = b'{"candidates":[{"content":{"role":"model","parts":[{"text":'
    suffix = b'}]},"index":0}],"modelVersion":' + orjson.dumps(model) + b',"responseId":"' + rid.encode() + b'"}'
    chunks = style.many(None, [prefix + orjson.dumps(p) + suffix for p in ans.pieces])
    last_parts: list[dict[str, Any]] = [_call_part(ans)] if tool_use else [{"text": ""}]
    tail = [style.event(None, {"candidates": [{"content": {"role": "model", "parts": last_parts},
                                               "finishReason": _finish(ans), "index": 0}],
                               "usageMetadata": usage(input_tokens, ans, magic), "modelVersion": model,
                               "responseId": rid})]
    error_event = style.data(error_body(503, "The model is overloaded (mock provider, mid-stream)."))
    return StreamPlan(style.opening([style.event(None, head_obj)]), style.with_pings(chunks, style.comment()), tail,
                      error_event)


async def _count_tokens(st: "MockState", scope: Scope, send: Send, path: str, raw: bytes, error: Any,
                        base: Headers) -> int:
    """`:countTokens`: ``{"totalTokens": N}`` for ``contents`` or a whole ``generateContentRequest``."""
    model = path.rpartition(":")[0].rpartition("/")[2]
    key = _key(scope)
    if not key:
        return await error(403, "Method doesn't allow unregistered callers (callers without established identity).")
    st.note_key(key)
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        return await error(400, f"Invalid JSON payload received. {e}")
    if not isinstance(body, dict):
        return await error(400, "Invalid JSON payload received. The body must be an object.")
    if not st.settings.serves(model):
        return await error(404, f"models/{model} is not found for API version v1beta, or is not supported for "
                                "countTokens.")
    inner = body.get("generateContentRequest")
    counted = inner if isinstance(inner, dict) else body
    if not isinstance(counted.get("contents"), list):
        return await error(400, "* CountTokensRequest: contents or generateContentRequest is required")
    return await send_json_status(send, 200, orjson.dumps({"totalTokens": estimate_tokens(counted)}), base)


async def handle(st: "MockState", scope: Scope, req: Request, send: Send, path: str) -> int:
    """One Gemini request, answered like Google would (status, body, stream)."""
    settings = st.settings
    base: Headers = [(b"x-mock-protocol", b"gemini")]

    def error(status: int, message: str | None = None, retry_s: int | None = None) -> Any:
        return send_json_status(send, status, error_body(status, message or default_message(status, PROTOCOL), retry_s),
                                base)

    raw = st.last_body = await req.body()
    if path == MODELS_PATH:
        if scope["method"] != "GET":
            return await error(405, f"Method {scope['method']} not allowed on {path}")
        if not _key(scope):
            return await error(403, "Method doesn't allow unregistered callers (callers without established identity).")
        return await send_json_status(send, 200, gemini_models_body(settings.dated_models), base)
    if path.endswith(":countTokens"):
        return await _count_tokens(st, scope, send, path, raw, error, base)
    matched = match_path(path)
    if matched is None:
        return await error(404, f"Method not found: {path}")
    if scope["method"] != "POST":
        return await error(405, f"Method {scope['method']} not allowed on {path}")
    endpoint, model = matched
    key = _key(scope)
    if not key:
        return await error(403, "Method doesn't allow unregistered callers (callers without established identity). "
                                "Please use API Key or other form of API consumer identity to call this API.")
    st.note_key(key)
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        return await error(400, f"Invalid JSON payload received. {e}")
    if not isinstance(body, dict):
        return await error(400, "Invalid JSON payload received. The body must be an object.")
    if not settings.serves(model):
        return await error(404, f"models/{model} is not found for API version v1beta, or is not supported for "
                                "generateContent.")
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        return await error(400, "* GenerateContentRequest.contents: contents is not specified")
    gc = body.get("generationConfig")
    max_tokens = gc.get("maxOutputTokens") if isinstance(gc, dict) else None
    if max_tokens is not None and (not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1):
        return await error(400, "Invalid value at 'generation_config.max_output_tokens'")

    input_tokens = estimate_tokens(body)
    admitted, _limit, _remaining, reset_s = st.admit(time.monotonic())
    if not admitted:
        return await error(429, "Resource has been exhausted (e.g. check quota).", max(1, math.ceil(reset_s)))
    text = last_user_text(body)
    magic = parse_magic(text)
    if settings.cached_tokens and not magic.cached:
        input_tokens += settings.cached_tokens
    magic = effective_magic(magic, settings, False)
    if settings.rate_429 or settings.rate_5xx or settings.rate_529:
        r = st.rng.random()
        if r < settings.rate_429:
            return await error(429, "Resource has been exhausted (e.g. check quota).", 1)
        r -= settings.rate_429
        if r < settings.rate_529:
            await req.pause(settings.latency_ms / 1000.0)
            return await error(503, "The model is overloaded. Please try again later.")
        r -= settings.rate_529
        if r < settings.rate_5xx:
            await req.pause(settings.latency_ms / 1000.0)
            return await error(500, "An internal error has occurred.")
    await req.pause((settings.latency_ms + magic.slow_ms) / 1000.0)
    if magic.error is not None:
        return await error(magic.error, None, 1 if magic.error == 429 else None)
    if magic.too_long and not model.startswith("gemini-2.5-pro"):
        return await error(400, "The input token count (250000) exceeds the maximum number of tokens allowed (200000).")

    if isinstance(gc, dict) and gc.get("responseMimeType") == "application/json" and not (magic.json or magic.badjson):
        magic = dataclasses.replace(magic, json=True)  # structured output asked for: the answer is a JSON object
    ans = st.answer(model, text, magic, max_tokens)
    tool_use = settings.tool_use or (magic.tool and not _has_tool_result(body))
    echo = gemini_dated_model(model) if settings.dated_models else model  # modelVersion names the version that ran
    if endpoint.name == "STREAM_GENERATE":
        plan = stream_plan(echo, input_tokens, ans, magic, Style.of(settings), tool_use)
        return await send_stream(req, send, base, plan, magic, settings.token_ms)
    return await send_json_status(send, 200, generate_body(echo, input_tokens, ans, magic, tool_use), base)


__all__ = ["error_body", "estimate_tokens", "generate_body", "handle", "is_gemini_path", "stream_plan"]
