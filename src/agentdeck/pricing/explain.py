"""What `agentdeck prices` shows for a model: the price used, where it comes from, the output cap.

Kept in the library (not the CLI) so the console or a status page can show the same answer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from agentdeck.budget.caps import clamp_max_tokens, max_tokens_cap
from agentdeck.pricing.model_price import ModelPrice, Rates
from agentdeck.pricing.table import PriceTable

if TYPE_CHECKING:
    from agentdeck.config import Config


def explain(cfg: Config, table: PriceTable, model: str, provider: str | None = None) -> dict[str, Any]:
    """Everything about one model's pricing and cap as plain data (`agentdeck prices --json`).

    ``provider`` is a config provider name; None means the provider the config's `models`
    patterns route this model to (the one the gateway would price it under), if any.
    """
    if provider is None:
        from agentdeck.providers.matching import ModelMatcher

        provider = ModelMatcher(cfg.providers).any_provider_for(model)
    price = table.get(model, provider)
    limit = table.output_limit(model)
    cap = max_tokens_cap(limit, cfg.caps)
    return {
        "model": model,
        "provider": provider,
        "price_provider_id": table.price_provider_id(provider),
        **price.to_dict(),
        "output": {
            "model_limit": limit,
            "cap": cap,
            "default_when_unset": clamp_max_tokens(None, limit, cfg.caps),
            "rule": _cap_rule(cfg, limit, cap),
        },
    }


def _cap_rule(cfg: Config, limit: int | None, cap: int | None) -> str:
    caps = cfg.caps
    if caps.max_tokens is not None:
        return f"[caps] max_tokens = {caps.max_tokens:,}" + (f", within the model's {limit:,}" if limit else "")
    if limit is None:
        return "not clamped while the limit is unknown; [prices.\"MODEL\"] max_output_tokens sets one"
    return f"[caps] max_tokens_share = {caps.max_tokens_share:g} of the model's {limit:,}"


def usd(x: float) -> str:
    """A per-Mtok price: at least two decimals, up to four ($0.025, $3.75, $22.50)."""
    s = f"{x:,.4f}".rstrip("0")
    whole, _, frac = s.partition(".")
    return f"${whole}.{frac:0<2}"


def _rates_line(r: Rates) -> str:
    return (f"input {usd(r.input)}  output {usd(r.output)}  cache read {usd(r.cache_read)}  "
            f"cache write {usd(r.cache_write)} (5m) {usd(r.cache_write_1h)} (1h)"
            + (f"  reasoning {usd(r.reasoning)}" if r.reasoning != r.output else ""))


def text_lines(info: dict[str, Any], price: ModelPrice, default: ModelPrice) -> list[str]:
    """The human-readable block for one model."""
    model = info["model"]
    served = f"provider {info['provider']}" if info["provider"] else "no configured provider serves it"
    lines: list[str] = []
    if not price.known:
        lines.append(f"{model}: no price known ({served}); charged the default "
                     f"{usd(default.input)} input / {usd(default.output)} output per Mtok "
                     "([gateway] default_price_input/_output), and the gateway raises a P1 alert")
    else:
        where = price.source
        if where == "local":
            where = 'local (a local model server: $0 unless [prices."MODEL"] is configured)'
        if price.catalog_model:
            where += f": {price.catalog_provider} {price.catalog_model}"
        lines.append(f"{model}  ({served}; price from {where})")
        lines.append(f"  per Mtok      {_rates_line(price.base)}")
        for tier in price.tiers:
            lines.append(f"  above {tier.above:,} input tokens: {_rates_line(tier.rates)}")
        if price.per_request:
            lines.append(f"  per request   ${price.per_request:g}")
        if price.variants:
            lines.append(f"  variants      {', '.join(price.variants)} (catalog)")
    out = info["output"]
    limit = f"{out['model_limit']:,}" if out["model_limit"] else "unknown"
    cap = f"{out['cap']:,}" if out["cap"] else "none"
    lines.append(f"  output cap    model limit {limit}, cap {cap} ({out['rule']}); "
                 f"a call without max_tokens gets {out['default_when_unset']:,}")
    return lines
