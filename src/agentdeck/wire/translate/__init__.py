"""Translation between protocols through one canonical form (``canonical``), one codec per protocol.

A call whose routed provider speaks another protocol than its caller gets a ``Translator``:
the caller's body is decoded to the canonical request and encoded for the provider; the
answer goes back the same way, a stream event by event as it passes (``TranslatingMeter``),
never buffered. The provider's own meter still reads every upstream event, so usage and cost
come from what the provider said, exactly as for a direct call.

Adding a protocol: one codec module implementing ``canonical.Codec`` and a line in ``CODECS`` (and in
``CALLER_CODECS`` for its endpoints).
"""

from __future__ import annotations

from agentdeck.wire.endpoints import Endpoint
from agentdeck.wire.translate import anthropic, gemini, openai_chat, openai_responses
from agentdeck.wire.translate.canonical import CallerCodec, ProviderCodec, TokenCounter
from agentdeck.wire.translate.count import EstimatedCount, ProviderCount
from agentdeck.wire.translate.translator import TranslatingMeter, Translator

CODECS: dict[str, ProviderCodec] = {"openai": openai_chat.CODEC, "anthropic": anthropic.CODEC, "gemini": gemini.CODEC}
"""By protocol: the provider side of "openai" is chat completions."""

CALLER_CODECS: dict[Endpoint, CallerCodec] = {
    Endpoint.CHAT: openai_chat.CODEC, Endpoint.RESPONSES: openai_responses.CODEC, Endpoint.MESSAGES: anthropic.CODEC,
    Endpoint.GENERATE: gemini.CODEC, Endpoint.STREAM_GENERATE: gemini.CODEC}
"""The caller endpoints whose calls are translated (count_tokens has its own, ``COUNTERS``)."""

COUNTERS: dict[str, TokenCounter] = {"gemini": gemini.CODEC}
"""Provider protocols with a count endpoint; Anthropic's count_tokens for any other is the gateway's estimate."""


def can_translate(endpoint: Endpoint, provider_protocol: str) -> bool:
    return ((endpoint in CALLER_CODECS or endpoint is Endpoint.COUNT_TOKENS) and provider_protocol in CODECS
            and endpoint.protocol != provider_protocol)


def translator(endpoint: Endpoint, provider_protocol: str) -> Translator | None:
    """The translation for a caller endpoint and a provider protocol; None when none is needed (or possible)."""
    if not can_translate(endpoint, provider_protocol):
        return None
    return _TRANSLATORS.get((endpoint, provider_protocol))


def _count(provider_protocol: str) -> Translator:
    counter = COUNTERS.get(provider_protocol)
    caller, provider = anthropic.CODEC, CODECS[provider_protocol]
    return EstimatedCount(caller, provider) if counter is None else ProviderCount(caller, provider, counter)


_TRANSLATORS: dict[tuple[Endpoint, str], Translator] = {
    (e, proto): Translator(c, CODECS[proto]) for e, c in CALLER_CODECS.items() for proto in CODECS if e.protocol != proto}
_TRANSLATORS.update({(Endpoint.COUNT_TOKENS, proto): _count(proto) for proto in CODECS if proto != anthropic.NAME})

__all__ = ["CALLER_CODECS", "CODECS", "COUNTERS", "TranslatingMeter", "Translator", "can_translate", "translator"]
