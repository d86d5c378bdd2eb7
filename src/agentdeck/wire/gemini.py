"""Google Gemini generateContent (``POST /v1beta/models/{model}:generateContent`` and
``:streamGenerateContent?alt=sse``, the same under ``/v1/models/``).

Why the wire object is made per call (``for_model``): Gemini names the model in the URL
path, not in the body, and ``parse`` only sees the body. The object carries the path's
model into ``ParsedRequest.model``; everything else about it is shared and stateless.
The model the gateway routes to goes into the upstream URL (``upstream_path``), so
``patch`` only ever touches ``generationConfig.maxOutputTokens``.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote_to_bytes

import orjson

from agentdeck.pricing import Usage
from agentdeck.wire.base import BadRequest, ParsedRequest, StreamFailure, as_dict, as_int
from agentdeck.wire.endpoints import Endpoint
from agentdeck.wire.sse import SSEEvent

NAME = "gemini"
LIMIT_FIELD = "generationConfig.maxOutputTokens"
_PREFIXES = ("/v1beta/models/", "/v1/models/")
_ACTIONS = {"generateContent": Endpoint.GENERATE, "streamGenerateContent": Endpoint.STREAM_GENERATE}
UPSTREAM_PREFIX = "/v1beta/models/"
"""Every call goes upstream under v1beta: it is a superset of v1 (Gemini CLI's own choice)."""

STATUS_NAMES = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
                405: "INVALID_ARGUMENT", 409: "ABORTED", 413: "INVALID_ARGUMENT", 429: "RESOURCE_EXHAUSTED",
                499: "CANCELLED", 500: "INTERNAL", 502: "UNAVAILABLE", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}
_STATUS_OF_NAME = {"INVALID_ARGUMENT": 400, "FAILED_PRECONDITION": 400, "OUT_OF_RANGE": 400, "UNAUTHENTICATED": 401,
                   "PERMISSION_DENIED": 403, "NOT_FOUND": 404, "ABORTED": 409, "RESOURCE_EXHAUSTED": 429,
                   "CANCELLED": 499, "INTERNAL": 500, "UNKNOWN": 500, "UNAVAILABLE": 503, "DEADLINE_EXCEEDED": 504}
_RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)s\s*$")


def match_path(path: str) -> tuple[Endpoint, str] | None:
    """(endpoint, model) for a Gemini path, None for any other path (the caller answers 404)."""
    for prefix in _PREFIXES:
        if path.startswith(prefix):
            rest = path[len(prefix):]
            model, sep, action = rest.rpartition(":")
            endpoint = _ACTIONS.get(action)
            if not sep or endpoint is None or not model or "/" in model:
                return None
            return endpoint, model
    return None


def upstream_path(model: str, stream: bool) -> str:
    """The provider path for a model: the model is part of a Gemini URL."""
    return UPSTREAM_PREFIX + model + (":streamGenerateContent?alt=sse" if stream else ":generateContent")


def caller_key(headers: dict[str, str], query_string: bytes) -> str:
    """A Gemini client's key: ``x-goog-api-key``, else ``?key=`` in the URL."""
    key = headers.get("x-goog-api-key", "")
    if key or b"key=" not in query_string:
        return key
    for part in query_string.split(b"&"):
        if part.startswith(b"key="):
            return unquote_to_bytes(part[4:]).decode("latin-1")
    return ""


def usage_of(u: Any) -> Usage | None:
    """Gemini usage: cached tokens are part of promptTokenCount; thoughts are billed as output."""
    if not isinstance(u, dict):
        return None
    prompt = as_int(u.get("promptTokenCount")) + as_int(u.get("toolUsePromptTokenCount"))
    cached = min(as_int(u.get("cachedContentTokenCount")), prompt)
    thoughts = as_int(u.get("thoughtsTokenCount"))
    return Usage(input_tokens=prompt - cached, output_tokens=as_int(u.get("candidatesTokenCount")) + thoughts,
                 cache_read_tokens=cached, reasoning_tokens=thoughts)


def retry_delay_s(body: Any) -> float | None:
    """Seconds from a Google error's RetryInfo (``"retryDelay": "12s"``), None when it has none."""
    if isinstance(body, (bytes, str)):
        try:
            body = orjson.loads(body)
        except orjson.JSONDecodeError:
            return None
    details = as_dict(as_dict(body).get("error")).get("details")
    if not isinstance(details, list):
        return None
    for d in details:
        if isinstance(d, dict) and d.get("@type") == _RETRY_INFO:
            v = d.get("retryDelay")
            m = _DURATION.match(v) if isinstance(v, str) else None
            if m:
                return float(m.group(1))
    return None


def failure_of(err: Any) -> StreamFailure:
    e = as_dict(err)
    name = str(e.get("status") or "INTERNAL")
    code = e.get("code")
    status = code if isinstance(code, int) and 400 <= code <= 599 else _STATUS_OF_NAME.get(name, 500)
    return StreamFailure(status, name, str(e.get("message") or "")[:300])


def error_body(status: int, message: str, code: str | None = None, param: str | None = None) -> bytes:
    """Google's error shape; agentdeck's own code rides along as an ErrorInfo detail (reason)."""
    err: dict[str, Any] = {"code": status, "message": message,
                           "status": STATUS_NAMES.get(status, "INTERNAL" if status >= 500 else "INVALID_ARGUMENT")}
    if code or param:
        info: dict[str, Any] = {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": code or "invalid_request",
                                "domain": "agentdeck"}
        if param:
            info["metadata"] = {"field": param}
        err["details"] = [info]
    return orjson.dumps({"error": err})


def _text_chars(obj: dict[str, Any]) -> int:
    n = 0
    for cand in obj.get("candidates") or ():
        for part in as_dict(as_dict(cand).get("content")).get("parts") or ():
            if isinstance(part, dict):
                t = part.get("text")
                if isinstance(t, str):
                    n += len(t)
                elif "functionCall" in part:
                    n += len(orjson.dumps(part["functionCall"]))
    return n


class GenerateMeter:
    """Reads a Gemini stream: every chunk may carry cumulative usageMetadata; a finishReason ends it."""

    __slots__ = ("usage", "text_chars", "done", "failure")

    def __init__(self, p: ParsedRequest) -> None:
        self.usage: Usage | None = None
        self.text_chars = 0
        self.done = False
        self.failure: StreamFailure | None = None

    def feed(self, ev: SSEEvent) -> bytes | None:
        data = ev.data
        if data is None:
            return ev.raw
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError:
            return ev.raw
        if not isinstance(obj, dict):
            return ev.raw
        if "error" in obj and "candidates" not in obj:
            self.failure = failure_of(obj["error"])
            return ev.raw
        u = obj.get("usageMetadata")
        if isinstance(u, dict):
            self.usage = usage_of(u)
        self.text_chars += _text_chars(obj)
        for cand in obj.get("candidates") or ():
            if isinstance(cand, dict) and cand.get("finishReason"):
                self.done = True
        return ev.raw


class GeminiGenerate:
    """The generateContent protocol object (see ``WireProtocol``); ``for_model`` gives the per-call one."""

    __slots__ = ("path_model",)
    name = NAME

    def __init__(self, path_model: str = "") -> None:
        self.path_model = path_model

    def for_model(self, model: str) -> "GeminiGenerate":
        return GeminiGenerate(model)

    def parse(self, endpoint: Endpoint, body: dict[str, Any], raw: bytes) -> ParsedRequest:
        model = self.path_model
        if not model:
            raise BadRequest("the model is part of the path: /v1beta/models/{model}:generateContent", "model")
        gc = body.get("generationConfig")
        if gc is not None and not isinstance(gc, dict):
            raise BadRequest("'generationConfig' must be an object", "generationConfig")
        limit = None
        if gc:
            v = gc.get("maxOutputTokens")
            if v is not None:
                if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                    raise BadRequest("'generationConfig.maxOutputTokens' must be a positive integer", LIMIT_FIELD)
                limit = v
        return ParsedRequest(endpoint, body, raw, model, endpoint is Endpoint.STREAM_GENERATE, limit,
                             LIMIT_FIELD if limit is not None else None)

    def patch(self, p: ParsedRequest, model: str, max_tokens: int) -> bytes:
        """Only the token limit (added when the client sent none, so the cap holds); the model is in the URL."""
        if max_tokens == p.max_tokens:
            return p.raw
        gc = as_dict(p.body.get("generationConfig"))
        return orjson.dumps({**p.body, "generationConfig": {**gc, "maxOutputTokens": max_tokens}})

    def meter(self, p: ParsedRequest) -> GenerateMeter:
        return GenerateMeter(p)

    def usage_from_json(self, body: Any) -> Usage | None:
        return usage_of(body.get("usageMetadata")) if isinstance(body, dict) else None

    error_body = staticmethod(error_body)

    def stream_error_event(self, message: str, code: str) -> bytes:
        status = 403 if code in ("agentdeck_stopped", "budget_exceeded") else 500
        return b"data: " + error_body(status, message, code) + b"\n\n"

    def auth_headers(self, api_key: str) -> dict[str, str]:
        return {"x-goog-api-key": api_key}


PROTOCOL = GeminiGenerate()
