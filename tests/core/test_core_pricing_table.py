"""PriceTable's order (config, local, catalog, default), provider mapping, output limits, old names."""

from __future__ import annotations

import pytest
from core_pricing_support import catalog_cost, config
from genai_prices import data_snapshot

from agentdeck.budget import model_output_limit
from agentdeck.pricing import BUILTIN_PRICES, LEGACY_MODELS, ModelPrice, PriceTable, Usage

U = Usage(input_tokens=1_000, output_tokens=1_000, cache_read_tokens=1_000, cache_write_tokens=1_000)


def test_config_prices_override_the_catalog_and_cover_dated_snapshots() -> None:
    t = PriceTable(config({"prices": {"claude-haiku-4-5": {"input": 2.0, "output": 7.0, "cache_read": 0.5},
                                      "my-model": {"input": 1.0, "output": 2.0}}}))
    for name in ("claude-haiku-4-5", "claude-haiku-4-5-20251001"):
        p = t.get(name, "anthropic")
        assert (p.source, p.known, p.input, p.output, p.cache_read) == ("config", True, 2.0, 7.0, 0.5)
    # cache writes without a configured rate are billed as input (never $0)
    assert t.cost("claude-haiku-4-5", U, "anthropic") == pytest.approx((1_000 * 2 + 1_000 * 7 + 1_000 * 0.5 + 1_000 * 2) / 1e6)
    assert t.get("my-model").source == "config"
    assert t.cost("my-model", Usage(input_tokens=1_000_000, output_tokens=1_000_000)) == pytest.approx(3.0)


def test_a_configured_family_does_not_capture_a_longer_sibling() -> None:
    t = PriceTable(config({"prices": {"gpt-4.1": {"input": 9.0, "output": 9.0}}}))
    assert t.get("gpt-4.1-2025-04-14", "openai").source == "config"
    mini = t.get("gpt-4.1-mini-2025-04-14", "openai")
    assert mini.source.startswith("catalog") and mini.input == 0.4


def test_an_unpriced_model_is_charged_the_configured_default_never_zero() -> None:
    t = PriceTable(config({"gateway": {"default_price_input": 20.0, "default_price_output": 80.0}}))
    p = t.get("house-model-7", "openai")
    assert p is t.default and not p.known and p.source == "default"
    assert t.cost("house-model-7", Usage(input_tokens=1_000, output_tokens=1_000, cache_read_tokens=1_000), "openai") == \
        pytest.approx((2_000 * 20 + 1_000 * 80) / 1e6)
    # a catalog provider that lacks the model does not borrow another provider's price
    assert not t.get("claude-opus-5-5", "openai").known


def test_local_providers_are_free_unless_configured() -> None:
    cfg = config({"providers": {"box": {"preset": "ollama", "models": ["llama3*", "qwen*"]}},
                  "prices": {"qwen3": {"input": 0.1, "output": 0.2}}})
    t = PriceTable(cfg)
    p = t.get("llama3.1:8b", "box")
    assert (p.source, p.known) == ("local", True)
    assert t.cost("llama3.1:8b", U, "box") == 0.0 and t.worst_case("llama3.1:8b", 10_000, 4_000, "box") == 0.0
    assert t.get("qwen3", "box").source == "config"


def test_the_provider_name_maps_to_the_catalog_provider() -> None:
    cfg = config({"providers": {
        "or": {"preset": "openrouter", "models": ["*/*"]},
        "work": {"protocol": "anthropic", "base_url": "https://llm-proxy.example.com", "models": ["claude-*"]},
    }})
    t = PriceTable(cfg)
    assert t.price_provider_id("or") == "openrouter" and t.price_provider_id("work") == "anthropic"
    p = t.get("anthropic/claude-sonnet-4.5", "or")
    assert p.catalog_provider == "openrouter"
    assert t.cost("anthropic/claude-sonnet-4.5", U, "or") == pytest.approx(
        catalog_cost("anthropic/claude-sonnet-4.5", U, "openrouter"), rel=1e-12)
    assert t.get("claude-sonnet-4-5", "work").catalog_provider == "anthropic"
    # no provider (or one the config does not have): the catalog guesses from the model name
    assert t.get("gpt-5.1").catalog_provider == "openai" and t.get("gpt-5.1", "nobody").catalog_provider == "openai"


def test_resolution_is_cached_per_model_and_provider_and_bounded() -> None:
    t = PriceTable(config())
    assert t.get("gpt-5.1", "openai") is t.get("gpt-5.1", "openai")
    for i in range(5_000):
        t.get(f"odd-model-{i}")
    assert len(t._cache) <= 4096
    assert not t.get("odd-model-4999").known  # past the bound still priced, just not memoised


def test_prices_are_the_shipped_data_whatever_snapshot_is_installed_globally() -> None:
    empty = data_snapshot.DataSnapshot(providers=[], from_auto_update=True)
    data_snapshot.set_custom_snapshot(empty)
    try:
        p = PriceTable(config()).get("claude-opus-5-5", "anthropic")
        assert p.known and p.input == 4.0
    finally:
        data_snapshot.set_custom_snapshot(None)


def test_output_limit_config_first_then_table_longest_prefix() -> None:
    cfg = config({"prices": {"claude-opus-5-5": {"input": 4, "output": 20, "max_output_tokens": 128_000}}})
    t = PriceTable(cfg)
    assert t.output_limit("claude-opus-5-5") == 128_000
    assert t.output_limit("claude-opus-5-5-20261101") == 128_000
    assert t.output_limit("gpt-6.1-sol") is None
    assert model_output_limit("gpt-4o-mini-2024-07-18") == 16_384
    assert model_output_limit("gpt-4.1-mini-2025-04-14") == 32_768
    assert model_output_limit("claude-sonnet-4-5-20250929") == 64_000
    assert model_output_limit("gpt-5.1") == 128_000 and model_output_limit("o3") == 100_000
    assert model_output_limit("gpt-5.1-codex-max") == 128_000
    assert model_output_limit("o3x") is None


def test_builtin_prices_name_the_old_table_at_catalog_prices() -> None:
    t = PriceTable(config())
    assert set(BUILTIN_PRICES) == set(LEGACY_MODELS)
    for model, p in BUILTIN_PRICES.items():
        assert isinstance(p, ModelPrice) and p.known
        assert (p.input, p.output) == (t.get(model).input, t.get(model).output)
