"""Helpers for the pricing tests: the catalog's own Decimal answer, and configs built from dicts."""

from __future__ import annotations

from typing import Any, Mapping

import genai_prices

from agentdeck.config import Config, parse_config
from agentdeck.pricing import Usage


def catalog_cost(model: str, u: Usage, provider_id: str | None, variant: Mapping[str, str] | None = None) -> float:
    """What genai-prices' public calc_price says the usage costs (its input_tokens is the TOTAL input)."""
    usage = genai_prices.Usage(
        input_tokens=u.total_input, cache_read_tokens=u.cache_read_tokens, cache_write_tokens=u.cache_write_tokens,
        cache_write_1h_tokens=u.cache_write_1h_tokens, output_tokens=u.output_tokens,
        output_reasoning_tokens=u.reasoning_tokens)
    return float(genai_prices.calc_price(usage, model, provider_id=provider_id,
                                         price_context=dict(variant) if variant else None).total_price)


def config(data: Mapping[str, Any] | None = None) -> Config:
    """A Config from a TOML-shaped dict, with an empty environment (no real keys read)."""
    return parse_config(dict(data or {}), source="<test>", environ={})
