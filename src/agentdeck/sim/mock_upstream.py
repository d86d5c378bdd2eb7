"""A simulated LLM provider that speaks both the OpenAI and the Anthropic wire protocols.

Why it exists: the gateway, its tests, the demo and the benchmark need an upstream that the
official ``openai`` and ``anthropic`` SDKs cannot tell from the real thing (same JSON shapes,
same SSE event sequences, same error bodies and rate-limit headers), that can be scripted per
request (magic words in the last user message) and per run (:class:`MockSettings`, changeable
at runtime through ``POST /_mock/settings``), and that is fast enough not to be the bottleneck
of a gateway benchmark. It is therefore a raw ASGI callable (no framework), JSON goes through
orjson, and it is served by uvicorn with httptools + uvloop.

Everything here runs on one event loop; the state needs no locks.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import hashlib
import itertools
import logging
import math
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import zlib
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Awaitable, Callable, MutableMapping

import orjson

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]

__all__ = [
    "MockSettings",
    "MockState",
    "MockServer",
    "make_app",
    "run_mock_process",
    "wait_for_mock",
    "format_go_duration",
    "estimate_tokens",
    "MAGIC_WORDS",
]

# --------------------------------------------------------------------------------------------
# Settings
# --------------------------------------------------------------------------------------------


@dataclass
class MockSettings:
    """How the mock behaves for every request (magic words override it per request).

    Mutable at runtime (``POST /_mock/settings`` or :meth:`MockState.update_settings`) so a test
    can make the provider slow, flaky or rate-limited without restarting it.
    """

    latency_ms: float = 0.0          # delay before the answer (before the first byte of a stream)
    token_ms: float = 0.0            # delay between streamed chunks
    rate_429: float = 0.0            # probability of an injected 429 rate_limit_error
    rate_5xx: float = 0.0            # probability of an injected 500 api_error
    rate_529: float = 0.0            # probability of an injected 529 overloaded_error (503 for OpenAI)
    rps_limit: float | None = None   # hard limit over a sliding 1-second window (None = unlimited)
    output_tokens: int = 24          # visible output tokens written when nothing else says otherwise
    seed: int = 0                    # seeds the RNG for error injection and the lorem text

    def validate(self) -> None:
        """Raise ValueError with a one-line reason if a field is out of range."""
        for name in ("rate_429", "rate_5xx", "rate_529"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not 0.0 <= float(v) <= 1.0:
                raise ValueError(f"{name} must be a probability in [0, 1], got {v!r}")
        for name in ("latency_ms", "token_ms"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or isinstance(v, bool) or v < 0 or not math.isfinite(v):
                raise ValueError(f"{name} must be a number >= 0, got {v!r}")
        if self.rps_limit is not None:
            v = self.rps_limit
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not v > 0 or not math.isfinite(v):
                raise ValueError(f"rps_limit must be a number > 0 (or null for no limit), got {v!r}")
        if not isinstance(self.output_tokens, int) or isinstance(self.output_tokens, bool) or self.output_tokens < 0:
            raise ValueError(f"output_tokens must be an integer >= 0, got {self.output_tokens!r}")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise ValueError(f"seed must be an integer, got {self.seed!r}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_SETTING_FIELDS = {f.name for f in dataclasses.fields(MockSettings)}

# --------------------------------------------------------------------------------------------
# Magic words
# --------------------------------------------------------------------------------------------

MAGIC_WORDS: dict[str, str] = {
    "[mock:truncate]": "the answer hits max_tokens (finish_reason length / stop_reason max_tokens / status incomplete)",
    "[mock:badjson]": "the text is invalid JSON (an unterminated object)",
    "[mock:json]": 'the text is valid JSON: {"ok": true, "model": ..., "words": ...}',
    "[mock:empty]": "the text is empty",
    "[mock:error=NNN]": "answer HTTP NNN in the protocol's error format",
    "[mock:slow=MS]": "add MS milliseconds of latency before answering",
    "[mock:tokens=N]": "write N visible output tokens",
    "[mock:stream-cut]": "a stream closes the connection half-way, without usage or final events",
    "[mock:stream-error]": "a stream sends an in-band error event (overloaded) half-way, after the 200",
    "[mock:cached=N]": "N of the input tokens are cache reads (OpenAI cached_tokens, Anthropic cache_read_input_tokens)",
    "[mock:cache-write=N]": "N of the input tokens are cache writes (Anthropic cache_creation_input_tokens)",
    "[mock:reasoning=N]": "N reasoning tokens, counted inside the output tokens",
    "[mock:too-long]": "answer 400 'prompt is too long' (the context-length error a bigger tier can fix)",
}

_MAGIC_RE = re.compile(r"\[mock:([a-z-]+)(?:=([^\]]*))?\]")


@dataclass
class Magic:
    """Per-request behaviour scripted by magic words in the last user message."""

    truncate: bool = False
    badjson: bool = False
    json: bool = False
    empty: bool = False
    error: int | None = None
    slow_ms: float = 0.0
    tokens: int | None = None
    stream_cut: bool = False
    stream_error: bool = False
    cached: int = 0
    cache_write: int = 0
    reasoning: int = 0
    too_long: bool = False


_NO_MAGIC = Magic()


def parse_magic(text: str) -> Magic:
    """Read the magic words out of a user message; unknown or malformed ones are ignored."""
    if "[mock:" not in text:
        return _NO_MAGIC
    m = Magic()
    for name, value in _MAGIC_RE.findall(text):
        try:
            if name == "truncate":
                m.truncate = True
            elif name == "badjson":
                m.badjson = True
            elif name == "json":
                m.json = True
            elif name == "empty":
                m.empty = True
            elif name == "error":
                code = int(value)
                if 400 <= code <= 599:
                    m.error = code
            elif name == "slow":
                m.slow_ms = max(0.0, float(value))
            elif name == "tokens":
                m.tokens = max(0, int(value))
            elif name == "stream-cut":
                m.stream_cut = True
            elif name == "stream-error":
                m.stream_error = True
            elif name == "cached":
                m.cached = max(0, int(value))
            elif name == "cache-write":
                m.cache_write = max(0, int(value))
            elif name == "reasoning":
                m.reasoning = max(0, int(value))
            elif name == "too-long":
                m.too_long = True
        except ValueError:
            continue
    return m


# --------------------------------------------------------------------------------------------
# Token estimate and text
# --------------------------------------------------------------------------------------------

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
_SEQ_LEN = 2048


def _word_sequence(seed: int) -> list[str]:
    rng = random.Random(seed)
    return [rng.choice(_LOREM) for _ in range(_SEQ_LEN)]


@dataclass
class Answer:
    """What the model 'writes' for one request: the text split into streamed pieces + counts."""

    pieces: list[str]
    text: str
    output_tokens: int       # visible + reasoning
    reasoning_tokens: int
    truncated: bool


def _split_even(text: str, n: int) -> list[str]:
    if n <= 1 or len(text) <= 1:
        return [text] if text else []
    n = min(n, len(text))
    step = len(text) / n
    return [text[round(i * step): round((i + 1) * step)] for i in range(n)]


# --------------------------------------------------------------------------------------------
# Small formatting helpers
# --------------------------------------------------------------------------------------------


def format_go_duration(seconds: float) -> str:
    """Format a duration like Go's time.Duration.String(), as OpenAI's reset headers do
    (``0s``, ``12ms``, ``1.5s``, ``6m0s``, ``23h47m36.648s``)."""
    if seconds <= 0:
        return "0s"
    if seconds < 1e-3:
        us = round(seconds * 1e6, 3)
        return f"{us:g}µs"
    if seconds < 1:
        ms = round(seconds * 1e3, 3)
        return f"{ms:g}ms"
    total_ms = round(seconds * 1000)
    h, rem = divmod(total_ms, 3_600_000)
    m, rem = divmod(rem, 60_000)
    s = rem / 1000
    s_txt = f"{s:.3f}".rstrip("0").rstrip(".") + "s"
    if h:
        return f"{h}h{m}m{s_txt}"
    if m:
        return f"{m}m{s_txt}"
    return s_txt


_rfc_cache: tuple[int, bytes] = (-1, b"")


def _rfc3339(ts: float) -> bytes:
    """RFC 3339 UTC timestamp with second precision (cached per second: it is on the hot path)."""
    global _rfc_cache
    sec = int(math.ceil(ts))
    if _rfc_cache[0] != sec:
        _rfc_cache = (sec, datetime.fromtimestamp(sec, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ").encode())
    return _rfc_cache[1]


_ID_PREFIX = os.urandom(6).hex()
_ID_COUNTER = itertools.count(1)


def _hexid(n: int = 24) -> str:
    """A unique hex id of n digits: random per process + a counter (no syscall per id)."""
    return f"{_ID_PREFIX}{next(_ID_COUNTER):0{n - 12}x}"


# --------------------------------------------------------------------------------------------
# State
# --------------------------------------------------------------------------------------------

OPENAI = "openai"
ANTHROPIC = "anthropic"

_PROVIDER_PATHS = frozenset({"/v1/chat/completions", "/v1/responses", "/v1/messages", "/v1/messages/count_tokens", "/v1/models"})


@dataclass
class MockState:
    """Settings, RNG, the rate-limit window and the counters behind ``/_mock/stats``."""

    settings: MockSettings = field(default_factory=MockSettings)
    rng: random.Random = field(init=False)
    words: list[str] = field(init=False)
    window: deque[float] = field(init=False, default_factory=deque)
    requests: int = 0
    by_path: dict[str, int] = field(default_factory=dict)
    in_flight: int = 0
    max_in_flight: int = 0
    status_counts: dict[str, int] = field(default_factory=dict)
    last_raw_headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    api_keys_seen: set[str] = field(default_factory=set)
    _key_hashes: dict[bytes, str] = field(init=False, default_factory=dict)
    _answers: dict[tuple[Any, ...], Answer] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.settings.validate()
        self._reseed()

    def _reseed(self) -> None:
        self.rng = random.Random(self.settings.seed)
        self.words = _word_sequence(self.settings.seed)
        self._answers = {}

    def note_key(self, key: bytes) -> None:
        """Remember a sha256 prefix of an API key (never the key itself in the stats)."""
        h = self._key_hashes.get(key)
        if h is None:
            h = hashlib.sha256(key).hexdigest()[:16]
            if len(self._key_hashes) < 4096:
                self._key_hashes[key] = h
        self.api_keys_seen.add(h)

    def last_headers(self) -> dict[str, str]:
        """The last provider request's headers, lowercased, with credentials redacted."""
        out: dict[str, str] = {}
        for k, v in self.last_raw_headers:
            name = k.decode("latin-1").lower()
            val = v.decode("latin-1")
            if name in ("authorization", "x-api-key"):
                val = f"<redacted-len-{len(val)}>"
            out[name] = val
        return out

    def update_settings(self, changes: dict[str, Any]) -> MockSettings:
        """Apply a partial update atomically (validated as a whole first; a bad value changes nothing)."""
        unknown = set(changes) - _SETTING_FIELDS
        if unknown:
            raise ValueError(f"unknown setting(s): {', '.join(sorted(unknown))}; known: {', '.join(sorted(_SETTING_FIELDS))}")
        candidate = dataclasses.replace(self.settings, **changes)
        for name in ("latency_ms", "token_ms", "rate_429", "rate_5xx", "rate_529"):
            v = getattr(candidate, name)
            if isinstance(v, int) and not isinstance(v, bool):
                setattr(candidate, name, float(v))
        candidate.validate()
        for k in changes:
            setattr(self.settings, k, getattr(candidate, k))
        if "seed" in changes:
            self._reseed()
        if "rps_limit" in changes:
            self.window.clear()
        return self.settings

    def reset(self) -> None:
        """Zero the counters (not the settings); in_flight stays true to what is running now."""
        self.requests = 0
        self.by_path = {}
        self.max_in_flight = self.in_flight
        self.status_counts = {}
        self.last_raw_headers = []
        self.api_keys_seen = set()
        self.window.clear()

    def stats(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "by_path": dict(self.by_path),
            "in_flight": self.in_flight,
            "max_in_flight": self.max_in_flight,
            "status_counts": dict(self.status_counts),
            "last_headers": self.last_headers(),
            "api_keys_seen": sorted(self.api_keys_seen),
            "settings": self.settings.to_dict(),
        }

    # -- rate limiting ----------------------------------------------------------------------

    def window_limit(self) -> int | None:
        lim = self.settings.rps_limit
        return None if lim is None else max(1, int(lim))

    def admit(self, now: float) -> tuple[bool, int | None, int, float]:
        """Sliding 1-second window: (admitted, limit, remaining, seconds until a slot frees)."""
        limit = self.window_limit()
        w = self.window
        while w and now - w[0] >= 1.0:
            w.popleft()
        if limit is None:
            return True, None, 0, 0.0
        if len(w) >= limit:
            return False, limit, 0, max(0.001, w[0] + 1.0 - now)
        w.append(now)
        return True, limit, limit - len(w), (w[0] + 1.0 - now)

    def answer(self, model: str, last_text: str, magic: Magic, max_tokens: int | None) -> Answer:
        """The deterministic text for a request (depends on seed, model and prompt only)."""
        reasoning = magic.reasoning
        want = magic.tokens if magic.tokens is not None else self.settings.output_tokens
        if magic.empty:
            want = 0
        truncated = False
        if max_tokens is not None:
            budget = max(0, max_tokens - reasoning)
            if magic.truncate or want > budget:
                want = budget
                truncated = True
        elif magic.truncate:
            truncated = True
        if want <= 0:
            return Answer([], "", max(1, reasoning), reasoning, truncated)
        off = zlib.crc32(last_text.encode()) % _SEQ_LEN
        ck = (model, off, want, magic.json, magic.badjson, reasoning, truncated)
        cached = self._answers.get(ck)
        if cached is not None:
            return cached
        seq = self.words
        words = [seq[(off + i) % _SEQ_LEN] for i in range(want - 1)]
        if magic.json or magic.badjson:
            doc = orjson.dumps({"ok": True, "model": model, "words": " ".join(words)}).decode()
            text = doc[:-2] if magic.badjson else doc
            pieces = _split_even(text, want)
        else:
            pieces = [f"model={model}"] + [" " + w for w in words]
            text = "".join(pieces)
        ans = Answer(pieces, text, want + reasoning, reasoning, truncated)
        if len(self._answers) >= 4096:
            self._answers.clear()
        self._answers[ck] = ans
        return ans


# --------------------------------------------------------------------------------------------
# Protocol bodies
# --------------------------------------------------------------------------------------------

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


def _default_message(status: int, protocol: str) -> str:
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


def _chat_usage(prompt: int, completion: int, cached: int, reasoning: int) -> dict[str, Any]:
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


def _responses_usage(inp: int, out: int, cached: int, reasoning: int) -> dict[str, Any]:
    return {
        "input_tokens": inp,
        "input_tokens_details": {"cached_tokens": cached},
        "output_tokens": out,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": inp + out,
    }


def _sse(data: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(data) + b"\n\n"


def _sse_event(event: str, data: dict[str, Any]) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


# --------------------------------------------------------------------------------------------
# The ASGI app
# --------------------------------------------------------------------------------------------

_CUT = contextvars.ContextVar("agentdeck_mock_cut", default=False)


class _QuietCut(logging.Filter):
    """Drop uvicorn's error line for streams the mock cuts on purpose ([mock:stream-cut])."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not _CUT.get()


_filter_installed = False


def _install_log_filter() -> None:
    global _filter_installed
    if not _filter_installed:
        logging.getLogger("uvicorn.error").addFilter(_QuietCut())
        _filter_installed = True


class _Disconnected(Exception):
    """The client went away while we were waiting; stop work so in_flight stays honest."""


class _Request:
    """Per-request helper: reads the body and waits while watching for a client disconnect."""

    __slots__ = ("receive", "_disc")

    def __init__(self, receive: Receive) -> None:
        self.receive = receive
        self._disc: asyncio.Task[None] | None = None

    async def body(self) -> bytes:
        msg = await self.receive()
        if msg["type"] == "http.disconnect":
            raise _Disconnected
        body = msg.get("body", b"")
        if not msg.get("more_body"):
            return body
        chunks = [body]
        while True:
            msg = await self.receive()
            if msg["type"] == "http.disconnect":
                raise _Disconnected
            chunks.append(msg.get("body", b""))
            if not msg.get("more_body"):
                return b"".join(chunks)

    async def _watch(self) -> None:
        while True:
            msg = await self.receive()
            if msg["type"] == "http.disconnect":
                return

    async def pause(self, seconds: float) -> None:
        """Sleep, but raise _Disconnected as soon as the client disconnects."""
        if seconds <= 0:
            return
        if self._disc is None:
            self._disc = asyncio.ensure_future(self._watch())
        done, _ = await asyncio.wait((self._disc,), timeout=seconds)
        if done:
            raise _Disconnected

    def close(self) -> None:
        if self._disc is not None and not self._disc.done():
            self._disc.cancel()


class MockApp:
    """The ASGI callable. ``state`` is public so in-process tests can read counters directly."""

    def __init__(self, settings: MockSettings | None = None) -> None:
        self.state = MockState(settings if settings is not None else MockSettings())
        _install_log_filter()

    # -- entry ------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        t = scope["type"]
        if t == "http":
            path: str = scope["path"]
            if path.startswith("/_mock/"):
                await self._control(scope, receive, send)
                return
            await self._provider(scope, receive, send, path)
        elif t == "lifespan":
            while True:
                msg = await receive()
                if msg["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif msg["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return

    # -- control ----------------------------------------------------------------------------

    async def _control(self, scope: Scope, receive: Receive, send: Send) -> None:
        path, method = scope["path"], scope["method"]
        st = self.state
        req = _Request(receive)
        try:
            body = await req.body()
        except _Disconnected:
            return
        if path == "/_mock/stats" and method == "GET":
            await _send_json(send, 200, orjson.dumps(st.stats()))
        elif path == "/_mock/reset" and method == "POST":
            st.reset()
            await _send_json(send, 200, orjson.dumps({"ok": True}))
        elif path == "/_mock/settings" and method == "GET":
            await _send_json(send, 200, orjson.dumps(st.settings.to_dict()))
        elif path == "/_mock/settings" and method == "POST":
            try:
                changes = orjson.loads(body) if body else {}
                if not isinstance(changes, dict):
                    raise ValueError("the body must be a JSON object of MockSettings fields")
                st.update_settings(changes)
            except (ValueError, TypeError) as e:
                await _send_json(send, 400, orjson.dumps({"error": str(e)}))
                return
            await _send_json(send, 200, orjson.dumps(st.settings.to_dict()))
        else:
            await _send_json(send, 404, orjson.dumps({"error": f"no control endpoint {method} {path}"}))

    # -- provider ---------------------------------------------------------------------------

    async def _provider(self, scope: Scope, receive: Receive, send: Send, path: str) -> None:
        st = self.state
        st.requests += 1
        st.by_path[path] = st.by_path.get(path, 0) + 1
        st.in_flight += 1
        if st.in_flight > st.max_in_flight:
            st.max_in_flight = st.in_flight
        req = _Request(receive)
        status = 0
        try:
            status = await self._handle(scope, req, send, path)
        except _Disconnected:
            status = 499
        finally:
            st.in_flight -= 1
            req.close()
            key = str(status)
            st.status_counts[key] = st.status_counts.get(key, 0) + 1

    async def _handle(self, scope: Scope, req: _Request, send: Send, path: str) -> int:
        st = self.state
        settings = st.settings
        # Only the few headers we act on are decoded here; the full redacted dict for
        # /_mock/stats is built lazily from the raw list (this is the hot path).
        raw_headers = scope["headers"]
        st.last_raw_headers = raw_headers
        auth = xkey = aver = abeta = None
        for k, v in raw_headers:
            if k == b"authorization":
                auth = v
            elif k == b"x-api-key":
                xkey = v
            elif k == b"anthropic-version":
                aver = v
            elif k == b"anthropic-beta":
                abeta = v
        bearer = auth[7:].strip() if auth is not None and auth[:7].lower() == b"bearer " else b""
        anthropic = path.startswith("/v1/messages") or aver is not None
        protocol = ANTHROPIC if anthropic else OPENAI
        key = (xkey.strip() or bearer) if (anthropic and xkey is not None) else bearer
        if key:
            st.note_key(key)

        rid = "req_" + _hexid()
        base: Headers = []
        if anthropic:
            base.append((b"request-id", rid.encode()))
            if aver is not None:
                base.append((b"x-mock-anthropic-version", aver))
            if abeta is not None:
                base.append((b"x-mock-anthropic-beta", abeta))
        else:
            base.append((b"x-request-id", rid.encode()))
            base.append((b"openai-version", b"2020-10-01"))

        def error(status: int, message: str | None = None, extra: Headers | None = None, param: str | None = None) -> Awaitable[int]:
            msg = message or _default_message(status, protocol)
            body = anthropic_error_body(status, msg, rid) if anthropic else openai_error_body(status, msg, param)
            return _send_json_status(send, status, body, base + (extra or []))

        if path not in _PROVIDER_PATHS:
            await req.body()
            return await error(404, f"Unknown endpoint: {scope['method']} {path}")
        method = scope["method"]
        if (path == "/v1/models") != (method == "GET") or method not in ("GET", "POST"):
            await req.body()
            return await error(405 if anthropic else 404, f"Method {method} not allowed on {path}")

        raw = await req.body()

        if not key:
            if anthropic:
                return await error(401, "x-api-key header is required")
            return await error(401, "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).")

        if path == "/v1/models":
            return await self._models(send, base, anthropic)

        # Parse and validate.
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError as e:
            return await error(400, f"Could not parse the JSON body of your request: {e}")
        if not isinstance(body, dict):
            return await error(400, "The request body must be a JSON object.")
        model = body.get("model")
        if not isinstance(model, str) or not model:
            return await error(400, "model: Field required" if anthropic else "you must provide a model parameter", param="model")
        if path == "/v1/responses":
            inp = body.get("input")
            if inp is not None and not isinstance(inp, (str, list)):
                return await error(400, "Invalid type for 'input': expected a string or an array.", param="input")
        else:
            msgs = body.get("messages")
            if not isinstance(msgs, list) or (not msgs and path != "/v1/messages/count_tokens"):
                if anthropic:
                    return await error(400, "messages: Field required" if msgs is None else "messages: Input should be a non-empty list")
                return await error(400, "Missing required parameter: 'messages'." if msgs is None else "Invalid 'messages': expected a non-empty array.", param="messages")

        max_tokens: int | None
        if path == "/v1/messages":
            mt = body.get("max_tokens")
            if not isinstance(mt, int) or isinstance(mt, bool) or mt < 1:
                return await error(400, "max_tokens: Field required" if mt is None else "max_tokens: Input should be a positive integer")
            max_tokens = mt
        elif path == "/v1/chat/completions":
            mt = body.get("max_completion_tokens")
            if mt is None:
                mt = body.get("max_tokens")
            if mt is not None and (not isinstance(mt, int) or isinstance(mt, bool) or mt < 1):
                return await error(400, "Invalid 'max_tokens': expected a positive integer.", param="max_tokens")
            max_tokens = mt
        elif path == "/v1/responses":
            mt = body.get("max_output_tokens")
            if mt is not None and (not isinstance(mt, int) or isinstance(mt, bool) or mt < 1):
                return await error(400, "Invalid 'max_output_tokens': expected a positive integer.", param="max_output_tokens")
            max_tokens = mt
        else:
            max_tokens = None

        input_tokens = estimate_tokens(body)
        if path == "/v1/messages/count_tokens":
            return await _send_json_status(send, 200, orjson.dumps({"input_tokens": input_tokens}), base)

        # Hard rate limit (sliding 1 s window), answered at once like a real provider.
        now = time.time()
        admitted, limit, remaining, reset_s = st.admit(time.monotonic())
        if not admitted:
            retry = max(1, math.ceil(reset_s))
            extra = _ratelimit_headers(anthropic, limit, 0, reset_s, now, input_tokens)
            extra.append((b"retry-after", str(retry).encode()))
            return await error(429, _default_message(429, protocol), extra)
        rl = _ratelimit_headers(anthropic, limit, remaining, reset_s, now, input_tokens)

        text = last_user_text(body)
        magic = parse_magic(text)

        # Injected failures (one draw per request so a seed reproduces a run).
        if settings.rate_429 or settings.rate_5xx or settings.rate_529:
            r = st.rng.random()
            if r < settings.rate_429:
                return await error(429, None, rl + [(b"retry-after", b"1")])
            r -= settings.rate_429
            if r < settings.rate_529:
                await req.pause(settings.latency_ms / 1000.0)
                return await error(529 if anthropic else 503)
            r -= settings.rate_529
            if r < settings.rate_5xx:
                await req.pause(settings.latency_ms / 1000.0)
                return await error(500)

        await req.pause((settings.latency_ms + magic.slow_ms) / 1000.0)

        if magic.error is not None:
            extra = [(b"retry-after", b"1")] if magic.error == 429 else []
            return await error(magic.error, None, rl + extra)
        if magic.too_long and not model.startswith(("claude-opus", "gpt-4.1")):
            return await error(400, "prompt is too long: 250000 tokens > 200000 maximum", rl)

        ans = st.answer(model, text, magic, max_tokens)
        stream = body.get("stream") is True
        headers = base + rl
        if path == "/v1/chat/completions":
            if stream:
                so = body.get("stream_options")
                include_usage = isinstance(so, dict) and so.get("include_usage") is True
                return await self._chat_stream(req, send, headers, model, input_tokens, ans, magic, include_usage)
            return await _send_json_status(send, 200, self._chat_body(model, input_tokens, ans, magic), headers)
        if path == "/v1/responses":
            if stream:
                return await self._responses_stream(req, send, headers, model, input_tokens, ans, magic, body)
            return await _send_json_status(send, 200, orjson.dumps(self._responses_obj(model, input_tokens, ans, magic, body, "resp_" + _hexid(48), "msg_" + _hexid(48), int(now))), headers)
        # /v1/messages
        if stream:
            return await self._messages_stream(req, send, headers, model, input_tokens, ans, magic)
        return await _send_json_status(send, 200, self._messages_body(model, input_tokens, ans, magic), headers)

    # -- OpenAI -----------------------------------------------------------------------------

    async def _models(self, send: Send, headers: Headers, anthropic: bool) -> int:
        ids = ["gpt-4o-mini", "gpt-4o", "gpt-4.1", "gpt-4.1-mini", "gpt-5", "gpt-5-mini",
               "claude-haiku-4-5", "claude-sonnet-4-5", "claude-opus-4-5"]
        if anthropic:
            data = [{"type": "model", "id": i, "display_name": i, "created_at": "2025-01-01T00:00:00Z"} for i in ids if i.startswith("claude")]
            body = {"data": data, "has_more": False, "first_id": data[0]["id"], "last_id": data[-1]["id"]}
        else:
            body = {"object": "list", "data": [{"id": i, "object": "model", "created": 1735689600, "owned_by": "mock"} for i in ids]}
        return await _send_json_status(send, 200, orjson.dumps(body), headers)

    def _chat_body(self, model: str, input_tokens: int, ans: Answer, magic: Magic) -> bytes:
        cached = min(magic.cached, input_tokens)
        return orjson.dumps({
            "id": "chatcmpl-" + _hexid(),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": ans.text, "refusal": None, "annotations": []},
                "logprobs": None,
                "finish_reason": "length" if ans.truncated else "stop",
            }],
            "usage": _chat_usage(input_tokens, ans.output_tokens, cached, ans.reasoning_tokens),
            "service_tier": "default",
            "system_fingerprint": "fp_mock",
        })

    async def _chat_stream(self, req: _Request, send: Send, headers: Headers, model: str, input_tokens: int,
                           ans: Answer, magic: Magic, include_usage: bool) -> int:
        cid = "chatcmpl-" + _hexid()
        created = int(time.time())
        usage_tail = b',"usage":null}' if include_usage else b"}"
        head = (b'{"id":"' + cid.encode() + b'","object":"chat.completion.chunk","created":' + str(created).encode()
                + b',"model":' + orjson.dumps(model) + b',"service_tier":"default","system_fingerprint":"fp_mock","choices":[{"index":0,"delta":')
        first = b"data: " + head + b'{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}]' + usage_tail + b"\n\n"
        chunks = [b"data: " + head + b'{"content":' + orjson.dumps(p) + b'},"logprobs":null,"finish_reason":null}]' + usage_tail + b"\n\n" for p in ans.pieces]
        finish = b"length" if ans.truncated else b"stop"
        tail = [b"data: " + head + b'{},"logprobs":null,"finish_reason":"' + finish + b'"}]' + usage_tail + b"\n\n"]
        if include_usage:
            tail.append(_sse({
                "id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                "service_tier": "default", "system_fingerprint": "fp_mock", "choices": [],
                "usage": _chat_usage(input_tokens, ans.output_tokens, min(magic.cached, input_tokens), ans.reasoning_tokens),
            }))
        tail.append(b"data: [DONE]\n\n")
        error_event = _sse({"error": {"message": "The server is overloaded (mock provider, mid-stream).", "type": "server_error", "param": None, "code": "overloaded"}})
        return await self._stream(req, send, headers, [first], chunks, tail, magic, error_event)

    def _responses_obj(self, model: str, input_tokens: int, ans: Answer, magic: Magic, body: dict[str, Any],
                       resp_id: str, msg_id: str, created: int, done: bool = True) -> dict[str, Any]:
        output: list[dict[str, Any]] = []
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
            "usage": _responses_usage(input_tokens, ans.output_tokens, min(magic.cached, input_tokens), ans.reasoning_tokens) if done else None,
            "user": None,
            "metadata": body.get("metadata") or {},
        }

    async def _responses_stream(self, req: _Request, send: Send, headers: Headers, model: str, input_tokens: int,
                                ans: Answer, magic: Magic, body: dict[str, Any]) -> int:
        resp_id, msg_id, created = "resp_" + _hexid(48), "msg_" + _hexid(48), int(time.time())
        seq = 0

        def ev(kind: str, data: dict[str, Any]) -> bytes:
            nonlocal seq
            data["type"] = kind
            data["sequence_number"] = seq
            seq += 1
            return _sse_event(kind, data)

        pending = self._responses_obj(model, input_tokens, ans, magic, body, resp_id, msg_id, created, done=False)
        head = [ev("response.created", {"response": pending}), ev("response.in_progress", {"response": pending})]
        head.append(ev("response.output_item.added", {"output_index": 0, "item": {
            "id": msg_id, "type": "message", "status": "in_progress", "role": "assistant", "content": []}}))
        head.append(ev("response.content_part.added", {"item_id": msg_id, "output_index": 0, "content_index": 0,
                                                       "part": {"type": "output_text", "annotations": [], "logprobs": [], "text": ""}}))
        chunks = [ev("response.output_text.delta", {"item_id": msg_id, "output_index": 0, "content_index": 0, "delta": p, "logprobs": []})
                  for p in ans.pieces]
        final = self._responses_obj(model, input_tokens, ans, magic, body, resp_id, msg_id, created, done=True)
        item = final["output"][0]
        tail = [
            ev("response.output_text.done", {"item_id": msg_id, "output_index": 0, "content_index": 0, "text": ans.text, "logprobs": []}),
            ev("response.content_part.done", {"item_id": msg_id, "output_index": 0, "content_index": 0, "part": item["content"][0]}),
            ev("response.output_item.done", {"output_index": 0, "item": item}),
            ev("response.incomplete" if ans.truncated else "response.completed", {"response": final}),
        ]
        error_event = _sse_event("error", {"type": "error", "code": "server_error", "message": "The server is overloaded (mock provider, mid-stream).",
                                           "param": None, "sequence_number": len(head) + len(chunks) // 2})
        return await self._stream(req, send, headers, head, chunks, tail, magic, error_event)

    # -- Anthropic --------------------------------------------------------------------------

    @staticmethod
    def _anthropic_usage(input_tokens: int, magic: Magic) -> tuple[int, int, int]:
        """(input_tokens, cache_creation, cache_read): input_tokens excludes the cached parts."""
        read = min(magic.cached, input_tokens)
        write = min(magic.cache_write, input_tokens - read)
        return input_tokens - read - write, write, read

    def _messages_body(self, model: str, input_tokens: int, ans: Answer, magic: Magic) -> bytes:
        inp, write, read = self._anthropic_usage(input_tokens, magic)
        return orjson.dumps({
            "id": "msg_" + _hexid(),
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "text", "text": ans.text}],
            "stop_reason": "max_tokens" if ans.truncated else "end_turn",
            "stop_sequence": None,
            "usage": {
                "input_tokens": inp,
                "cache_creation_input_tokens": write,
                "cache_read_input_tokens": read,
                "output_tokens": ans.output_tokens,
                "service_tier": "standard",
            },
        })

    async def _messages_stream(self, req: _Request, send: Send, headers: Headers, model: str, input_tokens: int,
                               ans: Answer, magic: Magic) -> int:
        inp, write, read = self._anthropic_usage(input_tokens, magic)
        start = {"type": "message_start", "message": {
            "id": "msg_" + _hexid(), "type": "message", "role": "assistant", "model": model, "content": [],
            "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": inp, "cache_creation_input_tokens": write, "cache_read_input_tokens": read,
                      "output_tokens": 1, "service_tier": "standard"}}}
        head = [
            _sse_event("message_start", start),
            _sse_event("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
            b'event: ping\ndata: {"type": "ping"}\n\n',
        ]
        chunks = [b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":'
                  + orjson.dumps(p) + b"}}\n\n" for p in ans.pieces]
        tail = [
            b'event: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\n',
            _sse_event("message_delta", {"type": "message_delta",
                                         "delta": {"stop_reason": "max_tokens" if ans.truncated else "end_turn", "stop_sequence": None},
                                         "usage": {"input_tokens": inp, "cache_creation_input_tokens": write,
                                                   "cache_read_input_tokens": read, "output_tokens": ans.output_tokens}}),
            b'event: message_stop\ndata: {"type":"message_stop"}\n\n',
        ]
        error_event = _sse_event("error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
        return await self._stream(req, send, headers, head, chunks, tail, magic, error_event)

    # -- streaming core ---------------------------------------------------------------------

    async def _stream(self, req: _Request, send: Send, headers: Headers, head: list[bytes], chunks: list[bytes],
                      tail: list[bytes], magic: Magic, error_event: bytes) -> int:
        """Send head, the per-token chunks (token_ms apart) and the tail; or cut/error half-way."""
        await send({"type": "http.response.start", "status": 200, "headers": headers + _SSE_HEADERS})
        token_s = self.state.settings.token_ms / 1000.0
        broken = magic.stream_cut or magic.stream_error
        if broken:
            half = len(chunks) // 2
            parts = head + chunks[:half]
        else:
            parts = head + chunks + tail
        if token_s <= 0:
            await send({"type": "http.response.body", "body": b"".join(parts), "more_body": True})
        else:
            await send({"type": "http.response.body", "body": b"".join(head), "more_body": True})
            for c in chunks[: len(parts) - len(head)]:
                await req.pause(token_s)
                await send({"type": "http.response.body", "body": c, "more_body": True})
            if not broken:
                # the closing events go out together, as a provider flushes them at the end
                await send({"type": "http.response.body", "body": b"".join(tail), "more_body": True})
        if magic.stream_cut:
            _CUT.set(True)  # returning without completing makes uvicorn drop the connection
            return 200
        if magic.stream_error:
            await send({"type": "http.response.body", "body": error_event, "more_body": False})
            return 200
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        return 200


_SSE_HEADERS: Headers = [(b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-cache")]
_JSON_CT = (b"content-type", b"application/json")


_OPENAI_ROOMY: Headers = [
    (b"x-ratelimit-limit-requests", b"10000"),
    (b"x-ratelimit-remaining-requests", b"9999"),
    (b"x-ratelimit-reset-requests", b"6ms"),
    (b"x-ratelimit-limit-tokens", b"2000000"),
]


def _ratelimit_headers(anthropic: bool, limit: int | None, remaining: int, reset_s: float, now: float, tokens: int) -> Headers:
    """The provider's own rate-limit headers (real numbers when rps_limit is set, roomy ones otherwise)."""
    if limit is None:
        if not anthropic:
            # roomy, constant request headers: the common, unlimited case stays cheap
            return [*_OPENAI_ROOMY, (b"x-ratelimit-remaining-tokens", str(max(0, 2_000_000 - tokens)).encode()), (b"x-ratelimit-reset-tokens", b"1ms")]
        limit, remaining, reset_s = 10_000, 9_999, 0.006
    tok_limit = 2_000_000
    tok_remaining = max(0, tok_limit - tokens)
    if anthropic:
        reset = _rfc3339(now + reset_s)
        tok_rem = str(round(tok_remaining, -3)).encode()
        tl = str(tok_limit).encode()
        return [
            (b"anthropic-ratelimit-requests-limit", str(limit).encode()),
            (b"anthropic-ratelimit-requests-remaining", str(remaining).encode()),
            (b"anthropic-ratelimit-requests-reset", reset),
            (b"anthropic-ratelimit-tokens-limit", tl),
            (b"anthropic-ratelimit-tokens-remaining", tok_rem),
            (b"anthropic-ratelimit-tokens-reset", reset),
            (b"anthropic-ratelimit-input-tokens-limit", tl),
            (b"anthropic-ratelimit-input-tokens-remaining", tok_rem),
            (b"anthropic-ratelimit-input-tokens-reset", reset),
            (b"anthropic-ratelimit-output-tokens-limit", b"400000"),
            (b"anthropic-ratelimit-output-tokens-remaining", b"400000"),
            (b"anthropic-ratelimit-output-tokens-reset", reset),
        ]
    return [
        (b"x-ratelimit-limit-requests", str(limit).encode()),
        (b"x-ratelimit-remaining-requests", str(remaining).encode()),
        (b"x-ratelimit-reset-requests", format_go_duration(reset_s).encode()),
        (b"x-ratelimit-limit-tokens", str(tok_limit).encode()),
        (b"x-ratelimit-remaining-tokens", str(tok_remaining).encode()),
        (b"x-ratelimit-reset-tokens", format_go_duration(tokens / tok_limit * 60.0).encode()),
    ]


async def _send_json(send: Send, status: int, body: bytes, headers: Headers | None = None) -> None:
    h = [_JSON_CT, (b"content-length", str(len(body)).encode())]
    if headers:
        h.extend(headers)
    await send({"type": "http.response.start", "status": status, "headers": h})
    await send({"type": "http.response.body", "body": body})


async def _send_json_status(send: Send, status: int, body: bytes, headers: Headers) -> int:
    await _send_json(send, status, body, headers)
    return status


def make_app(settings: MockSettings | None = None) -> MockApp:
    """The mock provider as an ASGI app; ``app.state`` holds settings and counters."""
    return MockApp(settings)


# --------------------------------------------------------------------------------------------
# Serving
# --------------------------------------------------------------------------------------------


def _uvicorn_config(app: MockApp, **kw: Any) -> Any:
    import uvicorn

    return uvicorn.Config(
        app,
        http="httptools",
        loop="uvloop",
        lifespan="off",
        access_log=False,
        log_level="warning",
        server_header=False,
        timeout_graceful_shutdown=2,
        # real providers keep idle connections open for a long time; uvicorn's 5 s default
        # would make pooled clients (the gateway) race the server's close and see resets
        timeout_keep_alive=75,
        backlog=2048,
        **kw,
    )


def bind_socket(host: str, port: int) -> socket.socket:
    """Bind the listening socket ourselves so port 0 works and the real port is known at once."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _thread_server_class() -> Any:
    """uvicorn.Server that never touches signal handlers (they belong to the host program)."""
    import contextlib

    import uvicorn

    class _ThreadServer(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Any:
            yield

        def install_signal_handlers(self) -> None:  # uvicorn < 0.29
            return None

    return _ThreadServer


class MockServer:
    """The mock served by uvicorn in a background thread on a free 127.0.0.1 port (for tests).

    ``with MockServer(MockSettings(latency_ms=50)) as m: ... m.url ...``. Settings can be changed
    live with :meth:`update`; counters read with :meth:`stats` (same data as ``/_mock/stats``).
    Signal handlers are never touched (they belong to the program hosting the thread).
    """

    def __init__(self, settings: MockSettings | None = None, host: str = "127.0.0.1", port: int = 0, **overrides: Any) -> None:
        s = settings if settings is not None else MockSettings()
        if overrides:
            s = dataclasses.replace(s, **overrides)
        self.app = make_app(s)
        self.host = host
        self.port = port
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def state(self) -> MockState:
        return self.app.state

    @property
    def settings(self) -> MockSettings:
        return self.app.state.settings

    def update(self, **changes: Any) -> MockSettings:
        """Change settings live (validated; thread-safe enough: plain attribute writes under the GIL)."""
        return self.app.state.update_settings(changes)

    def stats(self) -> dict[str, Any]:
        return self.app.state.stats()

    def reset(self) -> None:
        self.app.state.reset()

    def start(self, timeout: float = 10.0) -> "MockServer":
        import uvicorn

        sock = bind_socket(self.host, self.port)
        self.port = sock.getsockname()[1]
        self._server = _thread_server_class()(_uvicorn_config(self.app, log_config=None))

        def run() -> None:
            try:
                self._server.run(sockets=[sock])
            except BaseException as e:  # surfaced by start()
                self._error = e
            finally:
                sock.close()

        self._thread = threading.Thread(target=run, name=f"mock-upstream:{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if self._error is not None or not self._thread.is_alive():
                raise RuntimeError(f"mock provider failed to start: {self._error!r}")
            if time.monotonic() > deadline:
                raise RuntimeError("mock provider did not start in time")
            time.sleep(0.005)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                self._server.force_exit = True
                self._thread.join(timeout)
        self._thread = None

    def __enter__(self) -> "MockServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve_forever(host: str, port: int, settings: MockSettings, on_listening: Callable[[str], None] | None = None) -> None:
    """Serve in the current (main) thread until SIGINT/SIGTERM; used by the CLI."""
    import uvicorn

    sock = bind_socket(host, port)
    real_port = sock.getsockname()[1]
    server = uvicorn.Server(_uvicorn_config(make_app(settings)))
    shown = host if ":" not in host else f"[{host}]"
    url = f"http://{shown}:{real_port}"

    orig_startup = server.startup

    async def startup(sockets: list[socket.socket] | None = None) -> None:
        await orig_startup(sockets=sockets)
        if on_listening is not None and not server.should_exit:
            on_listening(url)

    server.startup = startup  # type: ignore[method-assign]
    # uvicorn handles SIGINT/SIGTERM itself, then re-raises the signal once it has shut down so
    # the previous handler runs; a no-op previous handler makes that a clean exit with status 0.
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, _ignore_signal)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _ignore_signal(signum: int, frame: object) -> None:
    """Placeholder handler: the stop was already handled by uvicorn's own handler."""


def settings_to_argv(settings: dict[str, Any]) -> list[str]:
    """CLI flags for MockSettings fields (``rate_429=0.1`` -> ``--rate-429 0.1``)."""
    argv: list[str] = []
    for k, v in settings.items():
        if k not in _SETTING_FIELDS:
            raise ValueError(f"unknown mock setting {k!r}")
        if v is None:
            continue
        argv += ["--" + k.replace("_", "-"), str(v)]
    return argv


def run_mock_process(port: int = 0, host: str = "127.0.0.1", **settings: Any) -> subprocess.Popen[str]:
    """Start ``python -m agentdeck mock-upstream`` as a child process (the benchmark wants the mock
    on its own core). Pair with :func:`wait_for_mock` to learn its URL once it serves."""
    argv = [sys.executable, "-m", "agentdeck", "mock-upstream", "--host", host, "--port", str(port), *settings_to_argv(settings)]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=None, text=True, bufsize=1)


def wait_for_mock(proc: subprocess.Popen[str], timeout: float = 15.0) -> str:
    """Block until the child prints its listening line; return the URL. Kills the child on failure."""
    import selectors

    assert proc.stdout is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            if sel.select(left):
                line = proc.stdout.readline()
                if not line:
                    break
                if "listening on " in line:
                    return line.rsplit("listening on ", 1)[1].strip()
    finally:
        sel.close()
    code = proc.poll()
    if code is None:
        proc.kill()
        proc.wait(5)
    raise RuntimeError(f"mock provider process did not start (exit code {proc.returncode})")
