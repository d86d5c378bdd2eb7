"""Which model a tier means for a caller: the tier's cheapest configured model, of any vendor.

A tier names one model for every caller (`fast = "gemini-2.5-flash"`) or one per calling
protocol. With translation on and `[routing] same_vendor = false` (the defaults), `auto`
takes, for each tier and caller protocol, the cheapest of the tier's models that a provider
with a key serves, whatever protocol that provider speaks; the call is translated when it is
another one. "Cheapest" is the catalog's (or `[prices]`') blended price per token at a typical
agent ratio of three prompt tokens to one written token: ``(3 * input + output) / 4``.

Why computed once, at start: the answer depends only on the config and the price catalog,
and the request path must not pay for it; the gateway reads the result from a dict.
Why only providers with a key: the built-in config names Anthropic and OpenAI, and a user who
set only one key must keep getting that vendor's models, not a provider 401.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Mapping
from urllib.parse import urlsplit

from agentdeck.providers.matching import ModelMatcher

if TYPE_CHECKING:
    from agentdeck.config import ProviderConfig, TierModels
    from agentdeck.pricing import ModelPrice, PriceTable

PROTOCOLS: tuple[str, ...] = ("anthropic", "openai", "gemini")
INPUT_SHARE, OUTPUT_SHARE = 3, 1
"""The typical ratio "cheapest" is judged at: three prompt tokens for each token written."""
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


@dataclass(frozen=True, slots=True)
class TierChoice:
    """One tier's model for one caller protocol, and why (for `agentdeck route` and the docs)."""

    model: str
    provider: str
    blended: float
    """USD per million tokens at the typical ratio."""
    others: tuple[tuple[str, float], ...] = ()
    """The candidates it was chosen over, with their blended prices."""


def blended(price: "ModelPrice") -> float:
    """USD per million tokens at three prompt tokens to one output token."""
    return (INPUT_SHARE * price.input + OUTPUT_SHARE * price.output) / (INPUT_SHARE + OUTPUT_SHARE)


def has_key(p: "ProviderConfig") -> bool:
    """A provider that can answer: a key is set, or it needs none (a local preset, a loopback host)."""
    return bool(p.api_key) or p.is_local or (urlsplit(p.base_url).hostname or "") in _LOOPBACK


def candidates(models: "TierModels", protocol: str) -> list[str]:
    """The tier's distinct models, the caller's own protocol's first (it wins a tie: no translation)."""
    out: list[str] = []
    for proto in (protocol, *PROTOCOLS):
        m = getattr(models, proto, None)
        if m and m not in out:
            out.append(m)
    return out


def cheapest(models: "TierModels", protocol: str, matcher: ModelMatcher, providers: Mapping[str, "ProviderConfig"],
             prices: "PriceTable") -> TierChoice | None:
    """The cheapest of the tier's models that a provider with a key serves (any protocol); None if none does.

    A model whose price nobody knows ranks after every priced one (its default price is a guess).
    """
    scored: list[tuple[bool, float, int, str, str]] = []
    for i, model in enumerate(candidates(models, protocol)):
        provider = matcher.provider_for(model, protocol) or matcher.any_provider_for(model)
        if provider is None or not has_key(providers[provider]):
            continue
        price = prices.get(model, provider)
        scored.append((not price.known, blended(price), i, model, provider))
    if not scored:
        return None
    scored.sort()
    _, best, _, model, provider = scored[0]
    return TierChoice(model, provider, best, tuple((m, b) for _, b, _, m, _ in scored[1:]))


def serving(providers: Mapping[str, "ProviderConfig"], name: str) -> ModelMatcher:
    """A matcher over one provider alone: does *this* provider's `models` match a name."""
    return ModelMatcher({name: providers[name]})
