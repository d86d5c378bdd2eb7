"""The effective price of every model for one config: config, then catalog, then the default.

Why this order: `[prices."MODEL"]` is the user's word (a negotiated rate, a model the
catalog lacks) and wins; the catalog (genai-prices, shipped data) prices everything else it
knows, matched the catalog's way (longest / most specific: `gpt-4.1-mini-2025-04-14` is
gpt-4.1-mini, not gpt-4.1); a model nobody prices is charged the configured default, never
$0 (the most common spend bug in gateways), with ``known=False`` so the gateway raises a P1.
Models served by a local provider (ollama, vllm presets) cost $0 unless configured.

Each (model, provider) is resolved once and kept as float rates, so ``cost`` and
``worst_case`` on the request path are a dict read and a few multiplications.
"""

from __future__ import annotations

from threading import Lock
from typing import TYPE_CHECKING, Mapping

from agentdeck.pricing.catalog import catalog
from agentdeck.pricing.model_price import ModelPrice
from agentdeck.pricing.usage import Usage

if TYPE_CHECKING:
    from agentdeck.config import Config, Price

_CACHE_MAX = 4096
"""Model names come from callers: bound the memo so odd names cannot grow it without end."""

_PROTOCOL_PRICE_PROVIDER = {"anthropic": "anthropic", "openai": "openai"}

_Key = tuple[str, "str | None"] | tuple[str, "str | None", tuple[tuple[str, str], ...]]


class PriceTable:
    """Prices for one config. ``provider`` arguments are provider NAMES from ``cfg.providers``."""

    def __init__(self, cfg: Config) -> None:
        self._cfg = cfg
        self._catalog = catalog()
        self.catalog_version: str = self._catalog.version
        self.default = ModelPrice(cfg.gateway.default_price_input, cfg.gateway.default_price_output,
                                  known=False, source="default")
        self._config: dict[str, ModelPrice] = {m: _from_config(p) for m, p in cfg.prices.items()}
        self._local = ModelPrice(0.0, 0.0, 0.0, 0.0, known=True, source="local")
        self._cache: dict[_Key, ModelPrice] = {}
        self._lock = Lock()
        self._warm_tiers()

    # -- the request path ------------------------------------------------------------------
    def get(self, model: str, provider: str | None = None, *, variant: Mapping[str, str] | None = None) -> ModelPrice:
        """The price ``model`` is charged at when served by the provider named ``provider``.

        ``variant`` selects a catalog price variant (``{"service_tier": "flex"}``,
        ``{"processing": "batch"}``, ``{"speed": "fast"}``); the base price otherwise.
        """
        key: _Key = (model, provider) if not variant else (model, provider, tuple(sorted(variant.items())))
        p = self._cache.get(key)
        if p is None:
            p = self._resolve(model, provider, variant)
            with self._lock:
                if len(self._cache) < _CACHE_MAX:
                    self._cache[key] = p
        return p

    def cost(self, model: str, usage: Usage, provider: str | None = None, *,
             variant: Mapping[str, str] | None = None) -> float:
        """USD for one call's usage: tier by total input, cache read and writes (5 m, 1 h) at their rates."""
        return self.get(model, provider, variant=variant).cost(usage)

    def worst_case(self, model: str, input_tokens: int, max_tokens: int, provider: str | None = None, *,
                   variant: Mapping[str, str] | None = None) -> float:
        """The most a call can cost (what the ledger reserves); never below ``cost`` for the same tokens."""
        return self.get(model, provider, variant=variant).worst_case(input_tokens, max_tokens)

    def output_limit(self, model: str) -> int | None:
        """The model's output-token limit when known: `[prices."M"] max_output_tokens`, else the table."""
        from agentdeck.budget.caps import model_output_limit

        return model_output_limit(model, self._cfg)

    # -- resolution (once per model and provider) --------------------------------------------
    def price_provider_id(self, provider: str | None) -> str | None:
        """The catalog provider id a config provider's models are priced under (None: guess by model)."""
        if provider is None:
            return None
        pcfg = self._cfg.providers.get(provider)
        if pcfg is None:
            return None
        return getattr(pcfg, "price_provider_id", None) or _PROTOCOL_PRICE_PROVIDER.get(pcfg.protocol, pcfg.protocol)

    def _resolve(self, model: str, provider: str | None, variant: Mapping[str, str] | None) -> ModelPrice:
        configured = self.configured(model)
        if configured is not None:
            return configured
        if provider is not None and getattr(self._cfg.providers.get(provider), "is_local", False):
            return self._local
        found = self._catalog.price(model, self.price_provider_id(provider), variant)
        return found if found is not None else self.default

    def _warm_tiers(self) -> None:
        """Resolve the routing tiers' models now, so routed calls never pay a first lookup (1-2 ms)."""
        for tier in self._cfg.routing.tiers.values():
            for protocol, model in (("anthropic", tier.anthropic), ("openai", tier.openai)):
                if not model:
                    continue
                self.get(model)
                for name, pcfg in self._cfg.providers.items():
                    if pcfg.protocol == protocol:
                        self.get(model, name)

    def configured(self, model: str) -> ModelPrice | None:
        """`[prices."M"]` for the model, or for the model a dated snapshot / `-latest` alias names."""
        p = self._config.get(model)
        if p is None and self._config:
            from agentdeck.providers.matching import snapshot_base

            base = snapshot_base(model)
            if base is not None:
                p = self._config.get(base)
        return p


def _from_config(p: Price) -> ModelPrice:
    return ModelPrice(p.input, p.output, p.cache_read, p.cache_write, known=True, source="config")
