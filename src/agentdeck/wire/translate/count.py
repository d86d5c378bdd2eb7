"""Anthropic's ``count_tokens`` for a model only a provider of another protocol serves.

Why two ways: Gemini has a count endpoint (``:countTokens``), so the count is the provider's own,
asked in Gemini's shape (``ProviderCount``); OpenAI chat has none, so the gateway answers itself
with its own estimate, the one it caps and reserves with (``agentdeck.wire.estimate``), and no
provider is called (``EstimatedCount``). Either way the caller gets Anthropic's
``{"input_tokens": N}``, and a provider's error comes back in Anthropic's shape as for any
translated call.
"""

from __future__ import annotations

import orjson

from agentdeck.wire.base import ParsedRequest
from agentdeck.wire.translate.canonical import CallerCodec, ProviderCodec, TokenCounter
from agentdeck.wire.translate.translator import Translator


def count_body(input_tokens: int) -> bytes:
    """Anthropic's count_tokens answer."""
    return b'{"input_tokens":' + str(input_tokens).encode() + b"}"


class UnreadableCount(ValueError):
    """A provider's 200 to a count request that says no count (a provider bug, reported as such)."""


class ProviderCount(Translator):
    """count_tokens asked of a provider that has a count endpoint of its own (Gemini)."""

    __slots__ = ("counter",)

    def __init__(self, caller: CallerCodec, provider: ProviderCodec, counter: TokenCounter) -> None:
        super().__init__(caller, provider)
        self.counter = counter

    def request(self, p: ParsedRequest, model: str, max_tokens: int) -> bytes:
        return orjson.dumps(self.counter.encode_count_request(self.caller.decode_request(p.body), model))

    def path(self, model: str, stream: bool) -> str:
        return self.counter.count_path(model)

    def response(self, raw: bytes, model: str) -> bytes:
        try:
            n = self.counter.decode_count(orjson.loads(raw))
        except orjson.JSONDecodeError:
            n = None
        if n is None:
            raise UnreadableCount(f"provider '{self.provider.name}' answered a count request with no count")
        return count_body(n)


class EstimatedCount(Translator):
    """count_tokens for a provider without a count endpoint (OpenAI chat): the gateway's estimate,
    answered before any provider call (the inherited request methods are never reached)."""

    __slots__ = ()

    def local_answer(self, estimate: int) -> bytes | None:
        return count_body(estimate)
