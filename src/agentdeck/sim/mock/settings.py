"""What the mock does: run-wide settings (`MockSettings`) and per-request magic words.

Why apart from the server: the CLI, the tests and `POST /_mock/settings` all build and
validate settings; none of them needs the server to do it.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import math
import re
from dataclasses import dataclass
from typing import Any


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
    # Shapes real providers send (all off by default, so the plain shape stays the baseline):
    crlf: bool = False               # frame SSE lines with CRLF, as many OpenAI-compatible servers do
    spaced_json: bool = False        # JSON with ", " and ": " separators (Python's json.dumps default)
    pings: bool = False              # ": ping" comments in every stream; Anthropic also repeats event: ping
    thinking: bool = False           # Anthropic: a thinking block (thinking_delta, signature_delta) first
    tool_use: bool = False           # Anthropic: a tool_use block (input_json_delta) last, stop_reason tool_use
    cached_tokens: int = 0           # input tokens read from cache (OpenAI cached_tokens, Anthropic cache_read)
    cache_write_tokens: int = 0      # Anthropic cache_creation_input_tokens
    reasoning_tokens: int = 0        # reasoning tokens inside the output; Responses adds a reasoning item
    stream_error: bool = False       # every stream ends in the protocol's error event half-way (after the 200)
    dated_models: bool = False       # answers name a dated snapshot of the requested model
    models: list[str] | None = None  # model globs served (404 for others); None = any model name

    def validate(self) -> None:
        """Raise ValueError with a one-line reason if a field is out of range."""
        self._validate_numbers()
        for name in ("crlf", "spaced_json", "pings", "thinking", "tool_use", "stream_error", "dated_models"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be true or false, got {getattr(self, name)!r}")
        for name in ("cached_tokens", "cache_write_tokens", "reasoning_tokens"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise ValueError(f"{name} must be an integer >= 0, got {v!r}")
        if self.models is not None and (not isinstance(self.models, list) or not self.models
                                        or not all(isinstance(m, str) and m for m in self.models)):
            raise ValueError(f"models must be a non-empty list of model names or globs (or null for any), got {self.models!r}")

    def serves(self, model: str) -> bool:
        """Whether a request for `model` is answered (any name unless `models` lists globs)."""
        return self.models is None or any(fnmatch.fnmatchcase(model, pattern) for pattern in self.models)

    def _validate_numbers(self) -> None:
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


SETTING_FIELDS = {f.name for f in dataclasses.fields(MockSettings)}

MAGIC_WORDS: dict[str, str] = {
    "[mock:tool]": "answer with a call of the tool 'lookup' (after the text), unless the last turn is a tool result",
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
    tool: bool = False


NO_MAGIC = Magic()


def parse_magic(text: str) -> Magic:
    """Read the magic words out of a user message; unknown or malformed ones are ignored."""
    if "[mock:" not in text:
        return NO_MAGIC
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
            elif name == "tool":
                m.tool = True
        except ValueError:
            continue
    return m


def effective_magic(magic: Magic, settings: MockSettings, anthropic: bool) -> Magic:
    """The request's magic words over the run-wide settings (a magic word wins where both speak)."""
    reasoning = magic.reasoning or settings.reasoning_tokens
    if anthropic and settings.thinking and not reasoning:
        reasoning = THINKING_TOKENS
    if (settings.cached_tokens == 0 and settings.cache_write_tokens == 0 and not settings.stream_error
            and reasoning == magic.reasoning):
        return magic
    return dataclasses.replace(
        magic,
        cached=magic.cached or settings.cached_tokens,
        cache_write=magic.cache_write or settings.cache_write_tokens,
        reasoning=reasoning,
        stream_error=magic.stream_error or settings.stream_error,
    )


THINKING_TOKENS = 8
"""Thinking tokens written when `thinking` is on and nothing else sets a reasoning count."""
