"""Float costs from PriceTable against genai-prices' own calc_price (Decimal), and hand-checked prices."""

from __future__ import annotations

import pytest
from core_pricing_support import catalog_cost, config
from hypothesis import given, settings
from hypothesis import strategies as st

from agentdeck.pricing import PriceTable, Usage
from agentdeck.pricing.catalog import catalog


@pytest.fixture(scope="module")
def table() -> PriceTable:
    return PriceTable(config())


# (model as a client sends it, config provider name, the catalog model it must resolve to)
SNAPSHOTS = [
    ("claude-sonnet-4-5-20250929", "anthropic", "claude-sonnet-4-5"),
    ("claude-haiku-4-5-20251001", "anthropic", "claude-haiku-4-5"),
    ("gpt-4.1-mini-2025-04-14", "openai", "gpt-4.1-mini"),
    ("gpt-4.1-nano-2025-04-14", "openai", "gpt-4.1-nano"),
    ("gpt-4.1-2025-04-14", "openai", "gpt-4.1"),
    ("gpt-5-mini-2025-08-07", "openai", "gpt-5-mini"),
    ("gpt-5-nano-2025-08-07", "openai", "gpt-5-nano"),
    ("gpt-4o-mini-2024-07-18", "openai", "gpt-4o-mini"),
    ("o3", "openai", "o3"),
    ("gpt-5.1", "openai", "gpt-5.1"),
    ("claude-opus-5-5", "anthropic", "claude-opus-5-5"),
    ("gpt-6.1-sol", "openai", "gpt-6.1-sol"),
]

MIXED = Usage(input_tokens=1_200, output_tokens=900, cache_read_tokens=30_000, cache_write_tokens=4_000,
              cache_write_1h_tokens=1_500, reasoning_tokens=400)


@pytest.mark.parametrize(("model", "provider", "catalog_id"), SNAPSHOTS)
def test_snapshots_resolve_to_the_most_specific_catalog_model(table: PriceTable, model: str, provider: str,
                                                             catalog_id: str) -> None:
    p = table.get(model, provider)
    assert p.known and p.catalog_model == catalog_id
    assert p.source == f"catalog genai-prices {catalog().version}"
    assert table.cost(model, MIXED, provider) == pytest.approx(catalog_cost(model, MIXED, provider), rel=1e-12)


def test_mini_is_not_priced_as_its_bigger_sibling(table: PriceTable) -> None:
    mini, big = table.get("gpt-4.1-mini-2025-04-14", "openai"), table.get("gpt-4.1", "openai")
    assert (mini.input, mini.output) == (0.4, 1.6) and (big.input, big.output) == (2.0, 8.0)
    assert table.get("gpt-5-mini-2025-08-07", "openai").input == 0.25


def test_anthropic_cache_read_and_both_cache_writes_at_their_rates(table: PriceTable) -> None:
    # Sonnet 4.5 list prices: $3 in, $15 out, $0.30 cache read, $3.75 5-minute write, $6 1-hour write.
    u = Usage(input_tokens=1_000, output_tokens=500, cache_read_tokens=2_000, cache_write_tokens=3_000,
              cache_write_1h_tokens=1_000)
    expected = (1_000 * 3 + 2_000 * 0.30 + 2_000 * 3.75 + 1_000 * 6 + 500 * 15) / 1e6
    assert table.cost("claude-sonnet-4-5-20250929", u, "anthropic") == pytest.approx(expected, rel=1e-12)
    assert table.cost("claude-sonnet-4-5-20250929", u, "anthropic") == pytest.approx(
        catalog_cost("claude-sonnet-4-5-20250929", u, "anthropic"), rel=1e-12)
    for model in ("claude-opus-5-5", "claude-haiku-4-5"):
        assert table.cost(model, u, "anthropic") == pytest.approx(catalog_cost(model, u, "anthropic"), rel=1e-12)


@pytest.mark.parametrize("model", ["o3", "gpt-5.1", "gpt-6.1-sol", "gpt-5-mini-2025-08-07"])
def test_reasoning_tokens_are_inside_output_never_billed_twice(table: PriceTable, model: str) -> None:
    with_reasoning = Usage(input_tokens=500, output_tokens=2_000, reasoning_tokens=1_500)
    plain = Usage(input_tokens=500, output_tokens=2_000)
    assert table.cost(model, with_reasoning, "openai") == pytest.approx(table.cost(model, plain, "openai"), rel=1e-12)
    assert table.cost(model, with_reasoning, "openai") == pytest.approx(
        catalog_cost(model, with_reasoning, "openai"), rel=1e-12)


def test_a_separate_reasoning_rate_applies_to_the_reasoning_part_only() -> None:
    # Perplexity's deep research bills reasoning at $3 and the rest of the output at $8.
    p = catalog().price("sonar-deep-research", "perplexity")
    assert p is not None and (p.output, p.reasoning) == (8.0, 3.0)
    u = Usage(input_tokens=100, output_tokens=1_000, reasoning_tokens=600)
    assert p.cost(u) == pytest.approx((100 * 2 + 400 * 8 + 600 * 3) / 1e6, rel=1e-12)
    assert p.cost(u) == pytest.approx(catalog_cost("sonar-deep-research", u, "perplexity"), rel=1e-12)


def test_a_per_request_fee_is_charged_once_per_call() -> None:
    p = catalog().price("sonar", "perplexity")
    assert p is not None and p.per_request == pytest.approx(0.012)
    u = Usage(input_tokens=1_000, output_tokens=100)
    assert p.cost(u) == pytest.approx(catalog_cost("sonar", u, "perplexity"), rel=1e-12)


def test_above_200k_input_the_whole_call_pays_the_tier(table: PriceTable) -> None:
    p = table.get("claude-sonnet-4-5", "anthropic")
    assert [t.above for t in p.tiers] == [200_000]
    assert (p.tiers[0].rates.input, p.tiers[0].rates.output) == (6.0, 22.5)
    at = Usage(input_tokens=200_000, output_tokens=1_000)
    over = Usage(input_tokens=150_000, cache_read_tokens=50_001, output_tokens=1_000)  # cache reads count toward it
    assert table.cost("claude-sonnet-4-5", at, "anthropic") == pytest.approx((200_000 * 3 + 1_000 * 15) / 1e6)
    assert table.cost("claude-sonnet-4-5", over, "anthropic") == pytest.approx(
        (150_000 * 6 + 50_001 * 0.6 + 1_000 * 22.5) / 1e6)
    for model, provider, u in [("claude-sonnet-4-5-20250929", "anthropic", over),
                               ("gemini-2.5-pro", None, Usage(input_tokens=250_000, output_tokens=3_000)),
                               ("gpt-6.1-sol", "openai", Usage(input_tokens=300_000, output_tokens=3_000,
                                                               reasoning_tokens=1_000))]:
        assert table.cost(model, u, provider) == pytest.approx(catalog_cost(model, u, provider), rel=1e-12)


def test_worst_case_covers_the_dearest_split_and_the_tier(table: PriceTable) -> None:
    # 1-hour cache writes are the dearest input; the reservation must cover a prompt written entirely that way.
    all_1h = Usage(cache_write_tokens=210_000, cache_write_1h_tokens=210_000, output_tokens=8_000)
    worst = table.worst_case("claude-sonnet-4-5", 210_000, 8_000, "anthropic")
    assert worst >= table.cost("claude-sonnet-4-5", all_1h, "anthropic")
    assert worst == pytest.approx((210_000 * 12 + 8_000 * 22.5) / 1e6)


def test_price_variants_the_catalog_knows(table: PriceTable) -> None:
    u = Usage(input_tokens=10_000, output_tokens=2_000, cache_read_tokens=5_000)
    flex = {"service_tier": "flex"}
    assert table.get("gpt-5-mini", "openai", variant=flex).input == 0.125
    assert table.cost("gpt-5-mini", u, "openai", variant=flex) == pytest.approx(
        catalog_cost("gpt-5-mini", u, "openai", flex), rel=1e-12)
    fast = {"speed": "fast"}
    assert table.cost("claude-opus-5-5", u, "anthropic", variant=fast) == pytest.approx(
        2 * table.cost("claude-opus-5-5", u, "anthropic"), rel=1e-12)
    assert "speed=fast" in table.get("claude-opus-5-5", "anthropic").variants


MODELS = [(m, p) for m, p, _ in SNAPSHOTS] + [("claude-sonnet-4-5", "anthropic"), ("gemini-2.5-pro", None)]
tokens = st.integers(min_value=0, max_value=400_000)


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(MODELS), tokens, tokens, tokens, st.integers(0, 100), st.integers(0, 64_000),
       st.integers(0, 100))
def test_any_usage_costs_what_the_catalog_says(model_provider: tuple[str, str | None], uncached: int, read: int,
                                               write: int, share_1h: int, out: int, share_reasoning: int) -> None:
    model, provider = model_provider
    table = _shared_table()
    u = Usage(input_tokens=uncached, cache_read_tokens=read, cache_write_tokens=write,
              cache_write_1h_tokens=write * share_1h // 100, output_tokens=out,
              reasoning_tokens=out * share_reasoning // 100)
    cost = table.cost(model, u, provider)
    assert cost == pytest.approx(catalog_cost(model, u, provider), rel=1e-9, abs=1e-12)
    assert table.worst_case(model, u.total_input, out, provider) >= cost - 1e-12


_table: list[PriceTable] = []


def _shared_table() -> PriceTable:
    if not _table:
        _table.append(PriceTable(config()))
    return _table[0]
