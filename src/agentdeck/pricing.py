"""Prices and cost: tokens x USD per million tokens.

Why a table in code: every call must be priced, streamed ones included, and a model with
no known price must never count as $0 (the most common spend bug in gateways). Config
`[prices."model"]` overrides or extends the table; unknown models fall back to the
configured default price and the gateway raises a warning event.
"""

from __future__ import annotations

from dataclasses import dataclass

from agentdeck.config import Config


@dataclass(frozen=True, slots=True)
class ModelPrice:
    input: float
    output: float
    cache_read: float | None = None
    cache_write: float | None = None
    known: bool = True


@dataclass(slots=True)
class Usage:
    """Token counts in one shape for both protocols.

    ``input_tokens`` is the uncached part of the prompt; cached reads and cache writes are
    counted separately (OpenAI reports cached tokens inside prompt_tokens; the protocol
    modules subtract them so nothing is billed twice).
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0

    @property
    def total_input(self) -> int:
        return self.input_tokens + self.cache_read_tokens + self.cache_write_tokens


BUILTIN_PRICES: dict[str, ModelPrice] = {
    "claude-haiku-4-5": ModelPrice(1.00, 5.00, 0.10, 1.25),
    "claude-sonnet-4-5": ModelPrice(3.00, 15.00, 0.30, 3.75),
    "claude-sonnet-4": ModelPrice(3.00, 15.00, 0.30, 3.75),
    "claude-opus-4-5": ModelPrice(5.00, 25.00, 0.50, 6.25),
    "claude-opus-4-1": ModelPrice(15.00, 75.00, 1.50, 18.75),
    "gpt-4o-mini": ModelPrice(0.15, 0.60, 0.075),
    "gpt-4o": ModelPrice(2.50, 10.00, 1.25),
    "gpt-4.1": ModelPrice(2.00, 8.00, 0.50),
    "gpt-4.1-mini": ModelPrice(0.40, 1.60, 0.10),
    "gpt-4.1-nano": ModelPrice(0.10, 0.40, 0.025),
    "gpt-5": ModelPrice(1.25, 10.00, 0.125),
    "gpt-5-mini": ModelPrice(0.25, 2.00, 0.025),
    "gpt-5-nano": ModelPrice(0.05, 0.40, 0.005),
    "gemini-2.5-flash": ModelPrice(0.30, 2.50, 0.03),
    "gemini-2.5-pro": ModelPrice(1.25, 10.00, 0.125),
}


class PriceTable:
    """The effective prices for one config: built-in table + overrides, and a default for the rest."""

    def __init__(self, cfg: Config) -> None:
        self._prices = dict(BUILTIN_PRICES)
        for model, p in cfg.prices.items():
            self._prices[model] = ModelPrice(p.input, p.output, p.cache_read, p.cache_write)
        self.default = ModelPrice(cfg.gateway.default_price_input, cfg.gateway.default_price_output, known=False)

    def get(self, model: str) -> ModelPrice:
        p = self._prices.get(model)
        if p is not None:
            return p
        # Dated snapshots ("claude-haiku-4-5-20251001", "gpt-4o-2024-08-06") price like their family.
        for name, price in self._prices.items():
            if model.startswith(name + "-"):
                return price
        return self.default

    def cost(self, model: str, usage: Usage) -> float:
        p = self.get(model)
        cache_read = p.cache_read if p.cache_read is not None else p.input
        cache_write = p.cache_write if p.cache_write is not None else p.input
        return (
            usage.input_tokens * p.input
            + usage.output_tokens * p.output
            + usage.cache_read_tokens * cache_read
            + usage.cache_write_tokens * cache_write
        ) / 1_000_000

    def worst_case(self, model: str, input_tokens: int, max_tokens: int) -> float:
        """The most a call can cost: every input token uncached (or cache-written) and max_tokens out."""
        p = self.get(model)
        in_price = max(p.input, p.cache_write or 0.0)
        return (input_tokens * in_price + max_tokens * p.output) / 1_000_000
