"""Prices and cost: tokens x USD per million tokens.

Why a catalog and not a table in code: every call must be priced, streamed ones included,
and models appear faster than a hand-kept table is edited (an unpriced model charged a $15/$75
default is wrong in the other direction). Prices come from genai-prices' shipped data
(:mod:`agentdeck.pricing.catalog`), `[prices."model"]` in the config overrides or extends
them, and a model nobody prices is charged the configured default (``known=False``; the
gateway raises a P1 alert). docs/pricing.md has the rules.
"""

from __future__ import annotations

from typing import Any

from agentdeck.pricing.model_price import ModelPrice, PriceTier, Rates
from agentdeck.pricing.table import PriceTable
from agentdeck.pricing.usage import Usage

__all__ = ["BUILTIN_PRICES", "LEGACY_MODELS", "ModelPrice", "PriceTable", "PriceTier", "Rates", "Usage"]

LEGACY_MODELS: tuple[str, ...] = (
    "claude-haiku-4-5", "claude-sonnet-4-5", "claude-sonnet-4", "claude-opus-4-5", "claude-opus-4-1",
    "gpt-4o-mini", "gpt-4o", "gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano", "gpt-5", "gpt-5-mini", "gpt-5-nano",
    "gemini-2.5-flash", "gemini-2.5-pro",
)
"""The models the hand-written table used to list."""

_builtin: dict[str, ModelPrice] | None = None


def __getattr__(name: str) -> Any:
    """``BUILTIN_PRICES``: the catalog's prices for :data:`LEGACY_MODELS`, built on first use.

    Kept for code written against the old table; built lazily so that importing ``Usage``
    does not load the catalog.
    """
    global _builtin
    if name == "BUILTIN_PRICES":
        if _builtin is None:
            from agentdeck.pricing.catalog import catalog

            cat = catalog()
            _builtin = {m: p for m in LEGACY_MODELS if (p := cat.price(m, None)) is not None}
        return _builtin
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
