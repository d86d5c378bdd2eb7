"""The mock provider as an ASGI app, and the ways to serve it (thread, process, CLI).

Why a raw ASGI callable and no framework: the gateway benchmark needs the mock to answer
well over 3,000 requests/s on one core, or the benchmark would measure the mock. JSON goes
through orjson; uvicorn serves it with httptools + uvloop. Everything runs on one event
loop; the state needs no locks.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import random
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
from typing import Any, Awaitable, Callable

import orjson

from agentdeck.sim.mock.answers import (
    ANTHROPIC,
    OPENAI,
    SEQ_LEN,
    Answer,
    anthropic_error_body,
    chat_body,
    ends_with_tool_result,
    dated_model,
    default_message,
    estimate_tokens,
    hexid,
    last_user_text,
    messages_body,
    models_body,
    openai_error_body,
    responses_obj,
    split_even,
    word_sequence,
)
from agentdeck.sim.mock.asgi import Disconnected, Headers, Receive, Request, Scope, Send, send_json, send_json_status
from agentdeck.sim.mock.settings import SETTING_FIELDS, Magic, MockSettings, effective_magic, parse_magic
from agentdeck.sim.mock.streams import Style, chat_plan, install_log_filter, messages_plan, responses_plan, send_stream
from agentdeck.sim.mock import gemini
from agentdeck.sim.mock.gemini import is_gemini_path

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
    last_body: bytes = b""
    """The last provider request's body as received (in-process tests read it; never in the stats)."""
    api_keys_seen: set[str] = field(default_factory=set)
    _key_hashes: dict[bytes, str] = field(init=False, default_factory=dict)
    _answers: dict[tuple[Any, ...], Answer] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.settings.validate()
        self._reseed()

    def _reseed(self) -> None:
        self.rng = random.Random(self.settings.seed)
        self.words = word_sequence(self.settings.seed)
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
            if name in ("authorization", "x-api-key", "x-goog-api-key"):
                val = f"<redacted-len-{len(val)}>"
            out[name] = val
        return out

    def update_settings(self, changes: dict[str, Any]) -> MockSettings:
        """Apply a partial update atomically (validated as a whole first; a bad value changes nothing)."""
        unknown = set(changes) - SETTING_FIELDS
        if unknown:
            raise ValueError(f"unknown setting(s): {', '.join(sorted(unknown))}; known: {', '.join(sorted(SETTING_FIELDS))}")
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
        off = zlib.crc32(last_text.encode()) % SEQ_LEN
        ck = (model, off, want, magic.json, magic.badjson, reasoning, truncated)
        cached = self._answers.get(ck)
        if cached is not None:
            return cached
        seq = self.words
        words = [seq[(off + i) % SEQ_LEN] for i in range(want - 1)]
        if magic.json or magic.badjson:
            doc = orjson.dumps({"ok": True, "model": model, "words": " ".join(words)}).decode()
            text = doc[:-2] if magic.badjson else doc
            pieces = split_even(text, want)
        else:
            pieces = [f"model={model}"] + [" " + w for w in words]
            text = "".join(pieces)
        ans = Answer(pieces, text, want + reasoning, reasoning, truncated)
        if len(self._answers) >= 4096:
            self._answers.clear()
        self._answers[ck] = ans
        return ans


class MockApp:
    """The ASGI callable. ``state`` is public so in-process tests can read counters directly."""

    def __init__(self, settings: MockSettings | None = None) -> None:
        self.state = MockState(settings if settings is not None else MockSettings())
        install_log_filter()

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
        req = Request(receive)
        try:
            body = await req.body()
        except Disconnected:
            return
        if path == "/_mock/stats" and method == "GET":
            await send_json(send, 200, orjson.dumps(st.stats()))
        elif path == "/_mock/reset" and method == "POST":
            st.reset()
            await send_json(send, 200, orjson.dumps({"ok": True}))
        elif path == "/_mock/settings" and method == "GET":
            await send_json(send, 200, orjson.dumps(st.settings.to_dict()))
        elif path == "/_mock/settings" and method == "POST":
            try:
                changes = orjson.loads(body) if body else {}
                if not isinstance(changes, dict):
                    raise ValueError("the body must be a JSON object of MockSettings fields")
                st.update_settings(changes)
            except (ValueError, TypeError) as e:
                await send_json(send, 400, orjson.dumps({"error": str(e)}))
                return
            await send_json(send, 200, orjson.dumps(st.settings.to_dict()))
        else:
            await send_json(send, 404, orjson.dumps({"error": f"no control endpoint {method} {path}"}))

    # -- provider ---------------------------------------------------------------------------

    async def _provider(self, scope: Scope, receive: Receive, send: Send, path: str) -> None:
        st = self.state
        st.requests += 1
        st.by_path[path] = st.by_path.get(path, 0) + 1
        st.in_flight += 1
        if st.in_flight > st.max_in_flight:
            st.max_in_flight = st.in_flight
        req = Request(receive)
        status = 0
        try:
            status = await self._handle(scope, req, send, path)
        except Disconnected:
            status = 499
        finally:
            st.in_flight -= 1
            req.close()
            key = str(status)
            st.status_counts[key] = st.status_counts.get(key, 0) + 1

    async def _handle(self, scope: Scope, req: Request, send: Send, path: str) -> int:
        st = self.state
        settings = st.settings
        # Only the few headers we act on are decoded here; the full redacted dict for
        # /_mock/stats is built lazily from the raw list (this is the hot path).
        raw_headers = scope["headers"]
        st.last_raw_headers = raw_headers
        if is_gemini_path(path):
            return await gemini.handle(st, scope, req, send, path)
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

        rid = "req_" + hexid()
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
            msg = message or default_message(status, protocol)
            body = anthropic_error_body(status, msg, rid) if anthropic else openai_error_body(status, msg, param)
            return send_json_status(send, status, body, base + (extra or []))

        if path not in _PROVIDER_PATHS:
            await req.body()
            return await error(404, f"Unknown endpoint: {scope['method']} {path}")
        method = scope["method"]
        if (path == "/v1/models") != (method == "GET") or method not in ("GET", "POST"):
            await req.body()
            return await error(405 if anthropic else 404, f"Method {method} not allowed on {path}")

        raw = st.last_body = await req.body()

        if not key:
            if anthropic:
                return await error(401, "x-api-key header is required")
            return await error(401, "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).")

        if path == "/v1/models":
            return await send_json_status(send, 200, models_body(anthropic, st.settings.dated_models), base)

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
        if not settings.serves(model):
            return await error(404, f"model: {model}" if anthropic else
                               f"The model `{model}` does not exist or you do not have access to it.", param="model")
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
            return await send_json_status(send, 200, orjson.dumps({"input_tokens": input_tokens}), base)

        # Hard rate limit (sliding 1 s window), answered at once like a real provider.
        now = time.time()
        admitted, limit, remaining, reset_s = st.admit(time.monotonic())
        if not admitted:
            retry = max(1, math.ceil(reset_s))
            extra = _ratelimit_headers(anthropic, limit, 0, reset_s, now, input_tokens)
            extra.append((b"retry-after", str(retry).encode()))
            return await error(429, default_message(429, protocol), extra)
        rl = _ratelimit_headers(anthropic, limit, remaining, reset_s, now, input_tokens)

        text = last_user_text(body)
        magic = parse_magic(text)
        # Run-wide cache tokens are a cached prompt prefix the estimate cannot see: they add to the input.
        if settings.cached_tokens and not magic.cached:
            input_tokens += settings.cached_tokens
        if settings.cache_write_tokens and not magic.cache_write:
            input_tokens += settings.cache_write_tokens
        magic = effective_magic(magic, settings, anthropic)

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
        echo = dated_model(model, anthropic) if settings.dated_models else model
        style = Style.of(settings)
        tool = settings.tool_use or (magic.tool and not ends_with_tool_result(body))
        if path == "/v1/chat/completions":
            if stream:
                so = body.get("stream_options")
                include_usage = isinstance(so, dict) and so.get("include_usage") is True
                plan = chat_plan(echo, input_tokens, ans, magic, include_usage, style, tool)
                return await send_stream(req, send, headers, plan, magic, settings.token_ms)
            return await self._answer(send, chat_body(echo, input_tokens, ans, magic, tool), headers)
        reasoning_item = settings.reasoning_tokens > 0
        if path == "/v1/responses":
            if stream:
                plan = responses_plan(echo, input_tokens, ans, magic, body, style, reasoning_item)
                return await send_stream(req, send, headers, plan, magic, settings.token_ms)
            obj = responses_obj(echo, input_tokens, ans, magic, body, "resp_" + hexid(48), "msg_" + hexid(48), int(now),
                                reasoning_id="rs_" + hexid(48) if reasoning_item else None)
            return await self._answer(send, orjson.dumps(obj), headers)
        # /v1/messages
        if stream:
            plan = messages_plan(echo, input_tokens, ans, magic, style, settings.thinking, tool)
            return await send_stream(req, send, headers, plan, magic, settings.token_ms)
        return await self._answer(send, messages_body(echo, input_tokens, ans, magic, settings.thinking, tool), headers)

    async def _answer(self, send: Send, body: bytes, headers: Headers) -> int:
        """A 200 JSON answer, re-spaced when the run asks for spaced JSON."""
        if self.state.settings.spaced_json:
            body = json.dumps(orjson.loads(body)).encode()
        return await send_json_status(send, 200, body, headers)


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


def make_app(settings: MockSettings | None = None) -> MockApp:
    """The mock provider as an ASGI app; ``app.state`` holds settings and counters."""
    return MockApp(settings)


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
        if k not in SETTING_FIELDS:
            raise ValueError(f"unknown mock setting {k!r}")
        if v is None or v is False:
            continue
        flag = "--" + k.replace("_", "-")
        if v is True:
            argv.append(flag)
        elif isinstance(v, list):
            argv += [flag, ",".join(v)]
        else:
            argv += [flag, str(v)]
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
