"""Prices from the maintained catalog `genai-prices` (pydantic's), as float rates.

Why this library: it is kept up to date with every provider's price page (new models,
dated snapshots and aliases, >200k-input tiers, 5-minute and 1-hour cache writes, batch /
priority / fast-mode variants), so a model released after this code was written is still
priced. Why probe it instead of reading its tables: the catalog defines how its units
nest (a cache read is a kind of input token, a 1-hour write a kind of cache write, reasoning
a kind of output); asking its own ``calc`` for one token of each kind gives exactly its
rates, whatever keys a model's entry uses, and the request path then multiplies floats.

Never at run time from the network: the catalog is the data shipped in the installed wheel
(``genai_prices.data``), read once per process; its ``update_prices`` module (which fetches
newer data over HTTP) is never imported or started here, so prices cannot change under a
running budget and nothing waits on a socket.
"""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from threading import Lock
from typing import TYPE_CHECKING, Any, Mapping

from agentdeck.pricing.model_price import ModelPrice, PriceTier, Rates

if TYPE_CHECKING:
    from genai_prices.data_snapshot import DataSnapshot

CATALOG = "genai-prices"
_MTOK = Decimal(1_000_000)
_MEMO_MAX = 4096


class Catalog:
    """The shipped genai-prices data, looked up by model name and catalog provider id."""

    def __init__(self) -> None:
        from importlib.metadata import version

        from genai_prices import data, data_snapshot, types

        self.version: str = version("genai-prices")
        self.source: str = f"catalog {CATALOG} {self.version}"
        # Our own snapshot of the bundled data: whatever else in the process might install a
        # fetched snapshot globally (set_custom_snapshot), these prices stay the wheel's.
        self._snapshot: DataSnapshot = data_snapshot.DataSnapshot(providers=data.providers, from_auto_update=False)
        self._find_provider_by_id = data_snapshot.find_provider_by_id
        self._usage = types.Usage
        self._tiered = types.TieredPrices
        self._lock = Lock()  # the snapshot's lookup caches are plain dicts shared by threads
        self._memo: dict[tuple[Any, ...], ModelPrice | None] = {}

    def knows_provider(self, provider_id: str) -> bool:
        return self._find_provider_by_id(self._snapshot.providers, provider_id) is not None

    def calc(self, usage: Any, model: str, provider_id: str | None, when: datetime,
             context: Mapping[str, str] | None = None) -> Any:
        """The catalog's own PriceCalculation (Decimal); raises LookupError for an unknown model."""
        with self._lock:
            return self._snapshot.calc(usage, model, provider_id, None, when, context)

    def price(self, model: str, provider_id: str | None, context: Mapping[str, str] | None = None,
              when: datetime | None = None) -> ModelPrice | None:
        """The model's price as float rates, or None when the catalog does not know the model.

        ``provider_id`` is a catalog provider id ("anthropic", "openai", "openrouter", ...);
        one the catalog does not know falls back to matching the model name against every
        provider (the catalog's own guess). ``context`` selects a price variant
        (``{"service_tier": "flex"}``, ``{"processing": "batch"}``, ``{"speed": "fast"}``).
        """
        key: tuple[Any, ...] | None = None
        if when is None:
            # Shared by every PriceTable of the process (tests and the console build several);
            # keyed by day because catalog prices can change on a date (o3's 2025-06-10 cut).
            when = datetime.now(timezone.utc)
            key = (model, provider_id, tuple(sorted(context.items())) if context else (), when.date())
            if key in self._memo:
                return self._memo[key]
        found = self._price(model, provider_id, context, when)
        if key is not None and len(self._memo) < _MEMO_MAX:
            self._memo[key] = found
        return found

    def _price(self, model: str, provider_id: str | None, context: Mapping[str, str] | None,
               when: datetime) -> ModelPrice | None:
        pid = provider_id if provider_id is not None and self.knows_provider(provider_id) else None
        ctx = dict(context) if context else None
        U = self._usage

        def probe(**tokens: int) -> Decimal:
            return self.calc(U(**tokens), model, pid, when, ctx).total_price

        try:
            first = self.calc(U(), model, pid, when, ctx)
        except LookupError:
            return None
        fee = first.total_price
        starts = sorted({t.start for v in vars(first.model_price).values() if isinstance(v, self._tiered) for t in v.tiers})

        def rates_at(total: int) -> Rates:
            """Per-Mtok rates in the tier a call with ``total`` prompt tokens is billed in."""
            scale = _MTOK / total
            plain = probe(input_tokens=total) - fee

            def per_input(**kinds: int) -> float:
                return float((probe(input_tokens=total, **kinds) - fee) * scale)

            def per_output(**kinds: int) -> float:
                return float((probe(input_tokens=total, output_tokens=1, **kinds) - fee - plain) * _MTOK)

            return Rates(
                input=float(plain * scale),
                output=per_output(),
                cache_read=per_input(cache_read_tokens=total),
                cache_write=per_input(cache_write_tokens=total),
                cache_write_1h=per_input(cache_write_tokens=total, cache_write_1h_tokens=total),
                reasoning=per_output(output_reasoning_tokens=1),
            )

        base = rates_at(1)
        tiers = tuple(PriceTier(s, rates_at(s + 1)) for s in starts)
        info = first.model
        variants = tuple(",".join(f"{k}={v}" for k, v in pv.when.items()) for pv in (info.price_variants or ()))
        return ModelPrice(
            input=base.input, output=base.output, cache_read=base.cache_read, cache_write=base.cache_write,
            known=True, source=self.source, cache_write_1h=base.cache_write_1h, reasoning=base.reasoning,
            per_request=float(fee), tiers=tiers, catalog_model=info.id, catalog_provider=first.provider.id,
            context_window=info.context_window, variants=variants,
        )


_catalog: Catalog | None = None
_catalog_lock = Lock()


def catalog() -> Catalog:
    """The process's catalog, loaded on first use (about 0.1 s: building the gateway pays it, not a call)."""
    global _catalog
    if _catalog is None:
        with _catalog_lock:
            if _catalog is None:
                _catalog = Catalog()
    return _catalog
