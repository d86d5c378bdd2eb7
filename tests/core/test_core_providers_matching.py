"""Which provider serves a model: globs, config order, dated snapshots and aliases, the 404 text, /v1/models rows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agentdeck.config import TIERS, Config, load_config, parse_config
from agentdeck.providers import ModelMatcher, snapshot_base
from agentdeck.routing import Router, UnknownModel

ROOT = Path(__file__).resolve().parents[2]


def _cfg(providers: dict[str, dict[str, Any]]) -> Config:
    return parse_config({"providers": providers}, "<test>", environ={})


def _p(protocol: str, *models: str) -> dict[str, Any]:
    return {"protocol": protocol, "base_url": "http://127.0.0.1:9", "models": list(models)}


@pytest.fixture
def defaults() -> ModelMatcher:
    return ModelMatcher(parse_config({}, "<test>", environ={}).providers)


@pytest.mark.parametrize("model, protocol, provider", [
    ("claude-opus-5-5", "anthropic", "anthropic"),            # Claude Code's default
    ("claude-sonnet-4-5-20250929", "anthropic", "anthropic"),
    ("gpt-6.1-sol", "openai", "openai"),                      # Codex's default
    ("gpt-4.1-mini-2025-04-14", "openai", "openai"),
    ("o3", "openai", "openai"),
    ("o4-mini", "openai", "openai"),
    ("chatgpt-4o-latest", "openai", "openai"),
    ("codex-mini-latest", "openai", "openai"),
    ("claude-opus-5-5", "openai", None),                      # served, but over the other protocol
    ("gpt-6.1-sol", "anthropic", None),
    ("llama-3.3-70b", "openai", None),
    ("omni", "openai", None),                                 # o[0-9]* needs a digit
])
def test_default_providers_serve_the_current_clients_defaults(defaults: ModelMatcher, model: str, protocol: str,
                                                              provider: str | None) -> None:
    assert defaults.provider_for(model, protocol) == provider


def test_config_order_first_match_wins_globs_and_exact_alike() -> None:
    m = ModelMatcher(_cfg({
        "cheap": _p("openai", "gpt-4o-mini"),
        "router": _p("openai", "gpt-*", "meta-llama/*"),
        "late": _p("openai", "gpt-4o", "meta-llama/llama-3-8b"),
    }).providers)
    assert m.provider_for("gpt-4o-mini", "openai") == "cheap"
    assert m.provider_for("gpt-4o", "openai") == "router"           # the earlier glob beats a later exact entry
    assert m.provider_for("meta-llama/llama-3-8b", "openai") == "router"
    assert m.provider_for("mistral-large", "openai") is None


def test_snapshots_and_aliases_of_exact_entries() -> None:
    m = ModelMatcher(_cfg({
        "ant": _p("anthropic", "claude-sonnet-4-5", "claude-3-5-haiku", "claude-opus-4-1-20250805"),
        "oai": _p("openai", "gpt-4.1-mini", "gpt-4o"),
    }).providers)
    assert m.provider_for("claude-sonnet-4-5-20250929", "anthropic") == "ant"     # -YYYYMMDD
    assert m.provider_for("claude-sonnet-4-5@20250929", "anthropic") == "ant"     # Vertex spelling
    assert m.provider_for("claude-3-5-haiku-latest", "anthropic") == "ant"        # -latest alias
    assert m.provider_for("gpt-4.1-mini-2025-04-14", "openai") == "oai"           # -YYYY-MM-DD
    assert m.provider_for("claude-opus-4-1", "anthropic") == "ant"                # undated alias of a dated entry
    assert m.provider_for("claude-opus-4-1-latest", "anthropic") == "ant"
    assert m.provider_for("gpt-4.1-2025-04-14", "openai") is None                 # gpt-4.1 is not gpt-4.1-mini
    assert m.provider_for("claude-sonnet-4-5-beta", "anthropic") is None          # only date and -latest suffixes
    assert m.provider_for("gpt-4o-2024-08-06", "anthropic") is None               # protocol still applies


def test_the_model_as_sent_beats_a_snapshot_match_of_an_earlier_provider() -> None:
    m = ModelMatcher(_cfg({"general": _p("openai", "gpt-4o"), "pinned": _p("openai", "gpt-4o-2024-08-06")}).providers)
    assert m.provider_for("gpt-4o-2024-08-06", "openai") == "pinned"
    assert m.provider_for("gpt-4o-2024-11-20", "openai") == "general"


def test_snapshot_base() -> None:
    assert snapshot_base("claude-haiku-4-5-20251001") == "claude-haiku-4-5"
    assert snapshot_base("gpt-4.1-mini-2025-04-14") == "gpt-4.1-mini"
    assert snapshot_base("claude-3-5-haiku-latest") == "claude-3-5-haiku"
    assert snapshot_base("gemini-2.5-flash-001") == "gemini-2.5-flash"  # Gemini's stable version IDs
    assert snapshot_base("gpt-5") is None and snapshot_base("-latest") is None


def test_a_gemini_version_id_reaches_the_provider_of_its_exact_name() -> None:
    m = ModelMatcher(_cfg({"google": _p("gemini", "gemini-2.5-flash")}).providers)
    assert m.provider_for("gemini-2.5-flash-001", "gemini") == "google"
    assert m.provider_for("gemini-2.5-pro-001", "gemini") is None


def test_results_are_cached_per_model_and_protocol(defaults: ModelMatcher) -> None:
    assert defaults.provider_for("gpt-6.1-sol", "openai") == "openai"
    assert defaults.provider_for("gpt-6.1-sol", "anthropic") is None
    assert defaults._cache[("gpt-6.1-sol", "openai")] == "openai" and defaults._cache[("gpt-6.1-sol", "anthropic")] is None
    for i in range(5000):                       # caller-chosen names cannot grow the memo without bound
        defaults.provider_for(f"nope-{i}", "openai")
    assert len(defaults._cache) <= 4096
    assert defaults.provider_for("gpt-6.1-sol", "openai") == "openai"


def test_explain_missing_names_providers_patterns_and_other_protocols() -> None:
    m = ModelMatcher(_cfg({
        "anthropic": _p("anthropic", "claude-*"),
        "openai": _p("openai", "gpt-*", "o[0-9]*"),
        "groq": _p("openai", "llama-*"),
    }).providers)
    text = m.explain_missing("claude-opus-5-5", "openai")
    assert text.startswith("unknown model 'claude-opus-5-5': ")
    assert "openai (gpt-*, o[0-9]*)" in text and "groq (llama-*)" in text
    assert "anthropic (anthropic)" in text and "another protocol" in text
    text = m.explain_missing("mistral-large", "anthropic")
    assert "anthropic (claude-*)" in text and "another protocol" not in text
    assert "none is configured" in ModelMatcher(_cfg({}).providers).explain_missing("x", "openai")


def test_listed_models_are_the_exact_entries_once() -> None:
    m = ModelMatcher(_cfg({"a": _p("anthropic", "claude-*", "claude-haiku-4-5"),
                           "b": _p("openai", "gpt-4o", "o[0-9]*", "gpt-4o-mini"),
                           "c": _p("openai", "gpt-4o")}).providers)
    assert m.listed_models() == [("claude-haiku-4-5", "a"), ("gpt-4o", "b"), ("gpt-4o-mini", "b")]


# --- the router uses the matcher ---------------------------------------------------------------
def test_router_passes_any_matched_model_and_404s_the_rest_with_the_explanation() -> None:
    router = Router(parse_config({}, "<test>", environ={}))
    r = router.resolve("claude-opus-5-5", "anthropic", "", 10, 0.0)
    assert (r.model, r.rule, r.tier) == ("claude-opus-5-5", "explicit", None)
    assert router.resolve("gpt-6.1-sol", "openai", "", 10, 0.0).model == "gpt-6.1-sol"
    assert router.resolve("claude-haiku-4-5-20251001", "anthropic", "", 10, 0.0).tier == "fast"
    with pytest.raises(UnknownModel) as e:
        router.resolve("llama-3.3-70b", "openai", "", 10, 0.0)
    assert "unknown model 'llama-3.3-70b'" in str(e.value) and "gpt-*" in str(e.value)


def test_router_model_rows_list_aliases_exact_entries_and_tier_models() -> None:
    router = Router(parse_config({"providers": {"a": _p("anthropic", "claude-*", "claude-opus-4-1")}}, "<t>", environ={}))
    rows = router.model_rows()
    assert rows[:4] == [("auto", "agentdeck"), ("fast", "agentdeck"), ("balanced", "agentdeck"), ("smart", "agentdeck")]
    assert ("claude-opus-4-1", "a") in rows and ("claude-haiku-4-5", "a") in rows   # tier model, matched by the glob
    assert ("gpt-4o-mini", "agentdeck") in rows                                     # tier model no provider serves
    assert not any("*" in m for m, _ in rows)
    assert router.models()[:4] == ["auto", "fast", "balanced", "smart"]


@pytest.mark.parametrize("source", ["defaults", "sample"])
def test_every_tier_model_is_served_by_a_provider_of_its_protocol(source: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTDECK_KEY_DEV", "dev-key-123")
    cfg = parse_config({}, "<test>", environ={}) if source == "defaults" else load_config(ROOT / "sample_config.toml")
    m = ModelMatcher(cfg.providers)
    for tier in TIERS:
        models = cfg.routing.tiers[tier]
        for protocol in ("anthropic", "openai"):
            model = getattr(models, protocol)
            assert model and m.provider_for(model, protocol) is not None, (tier, protocol, model)
    assert m.provider_for("claude-opus-5-5", "anthropic") and m.provider_for("gpt-6.1-sol", "openai")
