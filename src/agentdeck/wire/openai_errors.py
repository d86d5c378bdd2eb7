"""OpenAI's error shape, shared by chat completions and the Responses API."""

from __future__ import annotations

from typing import Any

import orjson

from agentdeck.wire.base import StreamFailure, as_dict

_ERROR_TYPES = {400: "invalid_request_error", 401: "invalid_request_error", 403: "permission_denied",
                404: "invalid_request_error", 413: "invalid_request_error", 429: "rate_limit_exceeded",
                500: "server_error", 502: "server_error", 503: "server_error"}
_STATUS_OF_KIND = {"invalid_request_error": 400, "authentication_error": 401, "permission_denied": 403,
                   "not_found_error": 404, "rate_limit_exceeded": 429, "rate_limit_error": 429,
                   "insufficient_quota": 429, "server_error": 500, "overloaded_error": 503}


def error_body(status: int, message: str, code: str | None = None, param: str | None = None) -> bytes:
    return orjson.dumps({"error": {"message": message, "type": _ERROR_TYPES.get(status, "invalid_request_error"),
                                   "param": param, "code": code}})


def auth_headers(api_key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {api_key}"}


def failure_of(err: Any) -> StreamFailure:
    """A provider's mid-stream error object as a failure the gateway records (status from its type or code)."""
    e = as_dict(err)
    kind = str(e.get("type") or e.get("code") or "server_error")
    code = str(e.get("code") or "")
    status = _STATUS_OF_KIND.get(code) or _STATUS_OF_KIND.get(kind, 500)
    return StreamFailure(status, kind, str(e.get("message") or "")[:300])
