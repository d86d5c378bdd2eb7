"""The config loader: the sample file is complete and valid, errors name file, key path and reason."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from agentdeck.config import Config, load_config, parse_config
from agentdeck.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def _paths(model: type[BaseModel], prefix: str = "") -> set[str]:
    out = set()
    for name, field in model.model_fields.items():
        if field.exclude:
            continue
        path = f"{prefix}{name}"
        out.add(path)
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            out |= _paths(ann, path + ".")
    return out


def _present(doc: Any, prefix: str = "") -> set[str]:
    out = set()
    if isinstance(doc, dict):
        for k, v in doc.items():
            out.add(prefix + k)
            if isinstance(v, dict):
                out |= _present(v, prefix + k + ".")
    return out


def test_sample_config_is_valid_and_mentions_every_key(monkeypatch: pytest.MonkeyPatch) -> None:
    import tomllib

    monkeypatch.setenv("AGENTDECK_KEY_DEV", "dev-key-123")

    text = (ROOT / "sample_config.toml").read_text()
    cfg = load_config(ROOT / "sample_config.toml")
    assert cfg.budget.hourly_usd == 10.0 and cfg.providers["anthropic"].limits.decrease == 0.7
    doc = tomllib.loads(text)
    present = _present(doc)
    present |= {"providers.limits", "providers.retry", "providers.breaker"}
    for p in ("anthropic", "openai"):
        present |= {k.replace(f"providers.{p}.", "providers.") for k in _present(doc) if k.startswith(f"providers.{p}.")}
    missing = []
    for path in _paths(Config):
        if path.startswith(("providers", "keys", "prices", "routing.tiers", "routing.rules")):
            continue
        if path not in present and f"# {path.split('.')[-1]} =" not in text:
            missing.append(path)
    for sub in ("limits", "retry", "breaker"):
        from agentdeck.config import BreakerConfig, LimitsConfig, RetryConfig
        model = {"limits": LimitsConfig, "retry": RetryConfig, "breaker": BreakerConfig}[sub]
        for name in model.model_fields:
            if f"\n{name} =" not in text:
                missing.append(f"providers.*.{sub}.{name}")
    assert not missing, f"sample_config.toml lacks: {sorted(missing)}"


def test_defaults_need_no_keys(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("AGENTDECK_CONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    cfg = load_config()
    assert cfg.source == "<defaults>" and cfg.keys == [] and cfg.gateway.host == "127.0.0.1"


@pytest.mark.parametrize("doc, expect", [
    ({"budget": {"hourly_usd": -1}}, "budget.hourly_usd: Input should be greater than or equal to 0"),
    ({"gateway": {"port": "x"}}, "gateway.port"),
    ({"providers": {"p": {"protocol": "grpc", "base_url": "http://x"}}}, "providers.p.protocol"),
    ({"providers": {"p": {"protocol": "openai", "base_url": "ftp://x"}}}, "providers.p.base_url: must start with http"),
    ({"providers": {"p": {"protocol": "openai", "base_url": "http://x", "fallback": "q"}}}, "providers.p.fallback: no provider named 'q'"),
    ({"routing": {"tiers": {"huge": {"openai": "x"}}}}, "routing.tiers: unknown tier 'huge'"),
    ({"keys": [{"name": "a", "key": "k1"}, {"name": "a", "key": "k2"}]}, "duplicate key name 'a'"),
    ({"budgett": {}}, "budgett: unknown key"),
])
def test_errors_name_the_key_path(doc: dict[str, Any], expect: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse_config(doc, "my.toml")
    assert str(e.value).startswith("my.toml: ") and expect in str(e.value)


def test_unset_env_var_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AGENTDECK_KEY_DEV", raising=False)
    with pytest.raises(ConfigError) as e:
        load_config(ROOT / "sample_config.toml")
    assert "keys[0].key" in str(e.value) and "AGENTDECK_KEY_DEV is not set" in str(e.value)


def test_env_expansion() -> None:
    cfg = parse_config({"keys": [{"name": "a", "key": "${K}"}], "gateway": {"admin_token": "${T}"}}, "x",
                       environ={"K": "secret-k", "T": "tok"})
    assert cfg.keys[0].key == "secret-k" and cfg.gateway.admin_token == "tok"
