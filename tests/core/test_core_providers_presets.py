"""Presets fill protocol, base_url and the key's variable; explicit keys win; warnings name variables, never keys."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agentdeck.config import Config, ProviderConfig, load_config, parse_config
from agentdeck.errors import ConfigError
from agentdeck.providers import PRESETS, provider_warnings

KEY_ENV = {"openrouter": "OPENROUTER_API_KEY", "groq": "GROQ_API_KEY", "gemini-openai": "GEMINI_API_KEY",
           "deepseek": "DEEPSEEK_API_KEY", "mistral": "MISTRAL_API_KEY", "together": "TOGETHER_API_KEY"}
PRICE_ID = {"openrouter": "openrouter", "groq": "groq", "gemini-openai": "google", "deepseek": "deepseek",
            "mistral": "mistral", "together": "together", "ollama": "ollama", "vllm": "vllm"}


def _one(section: dict[str, Any], environ: dict[str, str] | None = None) -> ProviderConfig:
    return parse_config({"providers": {"p": section}}, "<test>", environ=environ or {}).providers["p"]


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_a_preset_fills_protocol_url_key_and_price_provider(preset: str) -> None:
    env_name = KEY_ENV.get(preset, "")
    p = _one({"preset": preset, "models": ["m"]}, {env_name: f"secret-for-{preset}"} if env_name else {})
    assert p.protocol == "openai" and p.base_url == PRESETS[preset].base_url
    assert p.api_key_env == env_name
    assert p.api_key == (f"secret-for-{preset}" if env_name else "")
    assert p.price_provider_id == PRICE_ID[preset]
    assert p.is_local is (preset in ("ollama", "vllm"))


def test_explicit_keys_in_the_section_win_over_the_preset() -> None:
    p = _one({"preset": "groq", "base_url": "http://127.0.0.1:9/openai/v1", "api_key": "${MY_GROQ}", "models": ["m"]},
             {"MY_GROQ": "k-mine", "GROQ_API_KEY": "k-preset"})
    assert (p.base_url, p.api_key, p.api_key_env) == ("http://127.0.0.1:9/openai/v1", "k-mine", "MY_GROQ")
    assert p.url_for("/v1/chat/completions") == "http://127.0.0.1:9/openai/v1/chat/completions"
    p = _one({"preset": "openrouter", "api_key_env": "OR_KEY", "models": ["m"]}, {"OR_KEY": "k-or", "OPENROUTER_API_KEY": "no"})
    assert (p.api_key, p.api_key_env) == ("k-or", "OR_KEY")
    p = _one({"preset": "mistral", "api_key": "", "models": ["m"]}, {"MISTRAL_API_KEY": "not-used"})
    assert p.api_key == ""


def test_a_preset_in_code_reads_its_variable_from_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEEPSEEK_API_KEY", "k-ds")
    p = ProviderConfig(preset="deepseek", models=["deepseek-*"])
    assert (p.protocol, p.api_key, p.url_for("/v1/chat/completions")) == (
        "openai", "k-ds", "https://api.deepseek.com/v1/chat/completions")


@pytest.mark.parametrize("preset", ["openruter", 3])
def test_an_unknown_preset_names_the_key_path_and_lists_the_presets(preset: Any) -> None:
    with pytest.raises(ConfigError) as e:
        parse_config({"providers": {"mine": {"preset": preset, "models": ["x"]}}}, "my.toml", environ={})
    msg = str(e.value)
    assert msg.startswith("my.toml: providers.mine.preset: unknown preset ") and "more)" not in msg
    for name in PRESETS:
        assert name in msg


def test_without_a_preset_protocol_and_base_url_are_required() -> None:
    with pytest.raises(ConfigError, match=r"providers\.p\.protocol: Field required"):
        parse_config({"providers": {"p": {"base_url": "http://x"}}}, "my.toml", environ={})


def test_price_provider_follows_a_known_host_or_the_protocol() -> None:
    assert _one({"protocol": "openai", "base_url": "https://api.groq.com/openai/v1"}).price_provider_id == "groq"
    assert _one({"protocol": "anthropic", "base_url": "https://api.anthropic.com"}).price_provider_id == "anthropic"
    assert _one({"protocol": "openai", "base_url": "http://127.0.0.1:9"}).price_provider_id == "openai"
    assert _one({"protocol": "anthropic", "base_url": "https://proxy.example"}).price_provider_id == "anthropic"
    assert not _one({"protocol": "openai", "base_url": "http://127.0.0.1:11434/v1"}).is_local   # only presets are free


def test_a_provider_cannot_be_its_own_fallback() -> None:
    with pytest.raises(ConfigError, match=r"providers\.p\.fallback: a provider cannot be its own fallback"):
        parse_config({"providers": {"p": {"protocol": "openai", "base_url": "http://x", "fallback": "p"}}}, "t", environ={})
    cfg = parse_config({"providers": {"a": {"preset": "groq", "fallback": "b", "models": ["m"]},
                                      "b": {"preset": "together", "models": ["m"]}}}, "t", environ={})
    assert cfg.providers["a"].fallback == "b"


def test_warnings_name_the_variable_to_set_and_never_a_key() -> None:
    cfg = parse_config({"providers": {
        "anthropic": {"protocol": "anthropic", "base_url": "https://api.anthropic.com", "api_key": "${ANTHROPIC_API_KEY}",
                      "models": ["claude-*"]},
        "openai": {"protocol": "openai", "base_url": "https://api.openai.com/v1", "api_key": "sk-live-abcdef123456",
                   "models": ["gpt-*"]},
        "router": {"preset": "openrouter", "models": ["openrouter/*"]},
        "handmade": {"protocol": "openai", "base_url": "https://llm.example/v1", "models": ["x-*"]},
        "local": {"preset": "ollama", "models": ["llama*"]},
        "mock": {"protocol": "openai", "base_url": "http://127.0.0.1:9", "models": ["m"]},
        "idle": {"protocol": "anthropic", "base_url": "https://api.anthropic.com", "api_key": "k-idle-9876543"},
    }}, "<test>", environ={})
    lines = provider_warnings(cfg)
    assert lines == [
        "provider 'anthropic' has no API key: set the environment variable ANTHROPIC_API_KEY; "
        "its calls will be refused by https://api.anthropic.com",
        "provider 'router' has no API key: set the environment variable OPENROUTER_API_KEY; "
        "its calls will be refused by https://openrouter.ai/api/v1",
        "provider 'handmade' has no API key: set providers.handmade.api_key (e.g. \"${MY_KEY_VARIABLE}\"); "
        "its calls will be refused by https://llm.example/v1",
        "provider 'idle' lists no models: it serves nothing until providers.idle.models names some",
    ]
    assert not any("sk-live" in line or "k-idle" in line for line in lines)


def test_defaults_read_both_keys_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cfg = parse_config({}, "<test>", environ={"ANTHROPIC_API_KEY": "k-a"})
    assert cfg.providers["anthropic"].api_key == "k-a" and cfg.providers["openai"].api_key == ""
    assert provider_warnings(cfg) == ["provider 'openai' has no API key: set the environment variable OPENAI_API_KEY; "
                                      "its calls will be refused by https://api.openai.com/v1"]
    monkeypatch.setenv("OPENAI_API_KEY", "k-o")
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    direct = Config()
    assert direct.providers["openai"].api_key == "k-o" and direct.providers["anthropic"].api_key == ""


CONTRACT_PROVIDERS = '''
[providers.anthropic]
protocol = "anthropic"                     # or "openai" or "gemini"
base_url = "https://api.anthropic.com"     # as the provider's own SDK spells it (see below)
api_key = "${ANTHROPIC_API_KEY}"
models = ["claude-*"]                      # globs; dated snapshots and aliases resolve to a match

[providers.openrouter]
preset = "openrouter"                      # fills protocol, base_url and the key's env var
models = ["openrouter/*", "meta-llama/*"]
'''


def test_the_contracts_provider_example_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "k-a")
    monkeypatch.setenv("OPENROUTER_API_KEY", "k-or")
    f = tmp_path / "c.toml"
    f.write_text(CONTRACT_PROVIDERS)
    cfg = load_config(f)
    o = cfg.providers["openrouter"]
    assert (o.protocol, o.api_key, o.url_for("/v1/chat/completions")) == (
        "openai", "k-or", "https://openrouter.ai/api/v1/chat/completions")
