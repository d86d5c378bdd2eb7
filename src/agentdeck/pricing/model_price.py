"""One model's price as plain floats, and the arithmetic the request path runs on every call.

Why floats resolved up front: ``PriceTable.cost`` runs for every call (and every stream
that ends), so a price is resolved once per model (from the catalog, the config or the
default) into per-token-kind rates per price tier; a call's cost is then a handful of
multiplications, not a catalog lookup with Decimal arithmetic.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agentdeck.pricing.usage import Usage

PER = 1_000_000.0
"""Prices are USD per million tokens."""


@dataclass(frozen=True, slots=True)
class Rates:
    """USD per million tokens for each kind of token in one price tier, every kind resolved.

    ``cache_write`` is the default (5-minute) cache write; ``reasoning`` is the rate of the
    reasoning part of the output (the output rate unless the catalog says otherwise).
    """

    input: float
    output: float
    cache_read: float
    cache_write: float
    cache_write_1h: float
    reasoning: float
    _w1h_extra: float = field(init=False, repr=False, compare=False)
    _rs_extra: float = field(init=False, repr=False, compare=False)
    max_input: float = field(init=False, repr=False, compare=False)
    """The dearest rate a prompt token can be billed at (a cache write usually)."""
    max_output: float = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # The 1-hour writes are inside cache_write_tokens and reasoning inside output_tokens:
        # bill the whole at the plain rate and add the difference for the part (no double count).
        object.__setattr__(self, "_w1h_extra", self.cache_write_1h - self.cache_write)
        object.__setattr__(self, "_rs_extra", self.reasoning - self.output)
        object.__setattr__(self, "max_input", max(self.input, self.cache_read, self.cache_write, self.cache_write_1h))
        object.__setattr__(self, "max_output", max(self.output, self.reasoning))

    def cost(self, u: Usage) -> float:
        """USD for ``u`` at these rates; the 1-hour writes and reasoning are parts, not extras.

        Assumes the Usage invariants (``cache_write_1h_tokens <= cache_write_tokens``,
        ``reasoning_tokens <= output_tokens``) that the protocol modules keep.
        """
        return (u.input_tokens * self.input
                + u.cache_read_tokens * self.cache_read
                + u.cache_write_tokens * self.cache_write
                + u.cache_write_1h_tokens * self._w1h_extra
                + u.output_tokens * self.output
                + u.reasoning_tokens * self._rs_extra) / PER

    def to_dict(self) -> dict[str, float]:
        return {"input": self.input, "output": self.output, "cache_read": self.cache_read,
                "cache_write_5m": self.cache_write, "cache_write_1h": self.cache_write_1h,
                "reasoning": self.reasoning}


@dataclass(frozen=True, slots=True)
class PriceTier:
    """Rates that apply to the whole call once its total input is above ``above`` tokens.

    Providers (and the catalog) bill tiers as a cliff: a 200,001-token prompt pays the tier
    rate for every token, input and output, not only for the tokens above the threshold.
    """

    above: int
    rates: Rates


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """The price one model is charged at, where it came from, and its tiers.

    ``input``/``output``/``cache_read``/``cache_write`` are USD per million tokens in the base
    tier (``cache_read``/``cache_write`` None means "billed as input", as a config may leave
    them). ``known`` is False only for the configured default a model without a price gets.
    """

    input: float
    output: float
    cache_read: float | None = None
    cache_write: float | None = None
    known: bool = True
    source: str = "config"
    """"catalog genai-prices X.Y.Z", "config", "default" or "local"."""
    cache_write_1h: float | None = None
    reasoning: float | None = None
    per_request: float = 0.0
    """USD added once per call (a few catalog models have a request fee)."""
    tiers: tuple[PriceTier, ...] = ()
    """Higher-input tiers, ascending by threshold."""
    catalog_model: str | None = None
    """The catalog's id of the model this name matched (``gpt-4.1-mini`` for ``gpt-4.1-mini-2025-04-14``)."""
    catalog_provider: str | None = None
    context_window: int | None = None
    variants: tuple[str, ...] = ()
    """Price variants the catalog knows for this model ("service_tier=flex", "processing=batch")."""
    base: Rates = field(init=False, compare=False, repr=False)
    _desc: tuple[PriceTier, ...] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        cr = self.input if self.cache_read is None else self.cache_read
        cw = self.input if self.cache_write is None else self.cache_write
        base = Rates(self.input, self.output, cr, cw,
                     cw if self.cache_write_1h is None else self.cache_write_1h,
                     self.output if self.reasoning is None else self.reasoning)
        object.__setattr__(self, "base", base)
        object.__setattr__(self, "_desc", tuple(sorted(self.tiers, key=lambda t: t.above, reverse=True)))

    def rates_for(self, total_input: int) -> Rates:
        """The rates of the tier a call with ``total_input`` prompt tokens falls in."""
        for tier in self._desc:
            if total_input > tier.above:
                return tier.rates
        return self.base

    def cost(self, u: Usage) -> float:
        """USD for one call's usage, tier chosen by its total input (cache reads and writes included)."""
        if self._desc:
            rates = self.rates_for(u.input_tokens + u.cache_read_tokens + u.cache_write_tokens)
            return rates.cost(u) + self.per_request
        return self.base.cost(u) + self.per_request

    def worst_case(self, input_tokens: int, max_tokens: int) -> float:
        """The most a call with this prompt size and token limit can cost.

        Every prompt token at the dearest input rate of its tier (a 1-hour cache write costs
        more than plain input) and every output token at the dearest output rate, so it is
        never below :meth:`cost` for the same tokens, however they split.
        """
        inp = max(0, input_tokens)
        rates = self.rates_for(inp)
        return (inp * rates.max_input + max(0, max_tokens) * rates.max_output) / PER + self.per_request

    def to_dict(self) -> dict[str, Any]:
        """The price as `agentdeck prices --json` prints it."""
        return {
            "known": self.known, "source": self.source,
            "catalog_model": self.catalog_model, "catalog_provider": self.catalog_provider,
            "per_mtok": self.base.to_dict(),
            "tiers": [{"above_input_tokens": t.above, "per_mtok": t.rates.to_dict()} for t in self.tiers],
            "per_request": self.per_request, "context_window": self.context_window,
            "variants": list(self.variants),
        }
