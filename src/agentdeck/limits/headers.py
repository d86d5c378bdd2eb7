"""Parsing the providers' rate-limit headers.

Why a module of its own: both providers advertise their limits on every response, in
different dialects (OpenAI: Go-style durations such as ``6m0s``; Anthropic: RFC 3339
timestamps). Reading them lets the limiter slow down *before* the provider starts
answering 429, and lets the console show what the provider says the limit is.
"""

from __future__ import annotations

import math
import re
import time
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any, Mapping

_GO_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_GO_UNITS: dict[str, float] = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}


def parse_go_duration(s: str) -> float:
    """Seconds in a Go ``time.Duration`` string (``1s``, ``6m0s``, ``12ms``, ``23h47m36.648s``).

    A bare number is taken as seconds. Raises ``ValueError`` for anything else, so a
    caller can tell "no information" from "zero".
    """
    text = s.strip()
    if not text:
        raise ValueError("empty duration")
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    sign = 1.0
    if text[0] in "+-":
        sign = -1.0 if text[0] == "-" else 1.0
        text = text[1:]
    if text == "0":
        return 0.0
    pos = 0
    total = 0.0
    for m in _GO_PART.finditer(text):
        if m.start() != pos:
            raise ValueError(f"invalid duration {s!r}")
        total += float(m.group(1)) * _GO_UNITS[m.group(2)]
        pos = m.end()
    if pos != len(text) or pos == 0:
        raise ValueError(f"invalid duration {s!r}")
    return max(0.0, sign * total)


def _parse_timestamp(value: str) -> float | None:
    """Epoch seconds of an RFC 3339 timestamp or an HTTP date, or None."""
    v = value.strip()
    try:
        dt = datetime.fromisoformat(v.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        try:
            dt = parsedate_to_datetime(v)
        except (TypeError, ValueError, IndexError):
            return None
    if dt.tzinfo is None:
        return None
    return dt.timestamp()


_DURATIONS: dict[str, float] = {}
"""Reset values already read as durations (OpenAI sends a handful of spellings, ``6ms``, ``1m0s``, again
and again, on every response). Timestamps are never kept: their meaning moves with the clock."""
_DURATIONS_MAX = 4096


def parse_reset(value: str | None, now: float | None = None) -> float | None:
    """Seconds from ``now`` (epoch, default ``time.time()``) until a provider's limit resets.

    Accepts a Go duration (OpenAI), an RFC 3339 timestamp (Anthropic), an HTTP date or a
    plain number of seconds. Returns None when the value says nothing usable; never negative.
    """
    if value is None:
        return None
    known = _DURATIONS.get(value)
    if known is not None:
        return known
    v = str(value).strip()
    if not v:
        return None
    try:
        seconds = parse_go_duration(v)
    except ValueError:
        pass
    else:
        if len(_DURATIONS) < _DURATIONS_MAX:
            _DURATIONS[value] = seconds
        return seconds
    ts = _parse_timestamp(v)
    if ts is None:
        return None
    wall = time.time() if now is None else now
    return max(0.0, ts - wall)


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value)  # the common spelling; int() takes surrounding blanks too
    except (TypeError, ValueError):
        pass
    try:
        return int(float(str(value).strip()))
    except (ValueError, OverflowError):
        return None


def lower_headers(headers: Mapping[str, str]) -> Mapping[str, str]:
    """A view with lowercase names. httpx/aiohttp/Starlette headers already match any case;
    a plain dict (tests, simulations) is copied once with lowercased keys."""
    if isinstance(headers, dict):
        return {k.lower(): v for k, v in headers.items()}
    return headers


def parse_rate_limit_headers(headers: Mapping[str, str] | None, now: float | None = None) -> dict[str, Any] | None:
    """The provider-advertised request and token limits in one protocol-neutral dict.

    Keys: ``source`` (``openai`` | ``anthropic``), ``limit_requests``, ``remaining_requests``,
    ``reset_requests_s``, ``limit_tokens``, ``remaining_tokens``, ``reset_tokens_s``
    (each None when absent). Returns None when the response carries no such header.
    ``now`` is the wall clock (epoch seconds) used for Anthropic's absolute resets.
    """
    if not headers:
        return None
    h = lower_headers(headers)
    if "x-ratelimit-remaining-requests" in h or "x-ratelimit-limit-requests" in h or "x-ratelimit-remaining-tokens" in h:
        return {
            "source": "openai",
            "limit_requests": _int(h.get("x-ratelimit-limit-requests")),
            "remaining_requests": _int(h.get("x-ratelimit-remaining-requests")),
            "reset_requests_s": parse_reset(h.get("x-ratelimit-reset-requests"), now),
            "limit_tokens": _int(h.get("x-ratelimit-limit-tokens")),
            "remaining_tokens": _int(h.get("x-ratelimit-remaining-tokens")),
            "reset_tokens_s": parse_reset(h.get("x-ratelimit-reset-tokens"), now),
        }
    pre = "anthropic-ratelimit-"
    if pre + "requests-remaining" in h or pre + "requests-limit" in h or pre + "tokens-remaining" in h:
        return {
            "source": "anthropic",
            "limit_requests": _int(h.get(pre + "requests-limit")),
            "remaining_requests": _int(h.get(pre + "requests-remaining")),
            "reset_requests_s": parse_reset(h.get(pre + "requests-reset"), now),
            "limit_tokens": _int(h.get(pre + "tokens-limit")),
            "remaining_tokens": _int(h.get(pre + "tokens-remaining")),
            "reset_tokens_s": parse_reset(h.get(pre + "tokens-reset"), now),
        }
    return None


def retry_after_hint(headers: Mapping[str, str] | None, now: float | None = None, max_s: float = 60.0) -> float | None:
    """The wait a response asks for, the way the official SDKs read it.

    ``retry-after-ms`` (float milliseconds) first, then ``retry-after`` (seconds or an HTTP
    date). Honoured only when ``0 < wait <= max_s``; anything else gives None so the caller
    falls back to its own backoff.
    """
    if not headers:
        return None
    h = lower_headers(headers)
    wait: float | None = None
    ms = h.get("retry-after-ms")
    if ms is not None:
        try:
            wait = float(ms) / 1000.0
        except ValueError:
            wait = None
    if wait is None:
        ra = h.get("retry-after")
        if ra is not None:
            try:
                wait = float(ra)
            except ValueError:
                ts = _parse_timestamp(ra)
                if ts is not None:
                    wait = ts - (time.time() if now is None else now)
    if wait is None or not (0 < wait <= max_s):
        return None
    return wait


MAX_RETRY_HINT_S = 60.0
"""The longest wait the gateway asks a caller for: the official SDKs ignore longer hints."""


def retry_hint_headers(seconds: float) -> dict[str, str]:
    """``retry-after-ms`` and ``retry-after`` for an answer that asks the caller to wait ``seconds``
    (clamped to (0, 60]); the one place both the limiter's and the gateway's 429s get them."""
    s = min(MAX_RETRY_HINT_S, max(0.001, float(seconds)))
    return {"retry-after-ms": str(int(math.ceil(s * 1000.0))), "retry-after": str(int(math.ceil(s)))}
