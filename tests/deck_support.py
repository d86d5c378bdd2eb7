"""Constants and config builders the gateway-level tests share (imported by name: `from deck_support import ...`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

PROVIDER_KEY_ANTHROPIC = "sk-ant-provider-SECRET-aaaaaaaaaaaa"
PROVIDER_KEY_OPENAI = "sk-provider-SECRET-bbbbbbbbbbbbbbbb"
GATEWAY_KEY = "gw-dev-SECRET-cccccccccccc"
ADMIN_TOKEN = "admin-SECRET-dddddddddddd"



def gateway_config_dict(data_dir: Path, upstream_url: str, **sections: Any) -> dict[str, Any]:
    """A config with both protocols served by the mock, one caller key and an admin token."""
    cfg: dict[str, Any] = {
        "gateway": {"host": "127.0.0.1", "port": 0, "admin_token": ADMIN_TOKEN, "data_dir": str(data_dir),
                    "store_flush_interval_s": 0.2, "shutdown_grace_s": 2},
        "keys": [{"name": "dev", "key": GATEWAY_KEY}],
        "budget": {"hourly_usd": 1000.0, "daily_usd": 5000.0},
        "providers": {
            "anthropic": {"protocol": "anthropic", "base_url": upstream_url, "api_key": PROVIDER_KEY_ANTHROPIC,
                          "models": ["claude-haiku-4-5", "claude-sonnet-4-5", "claude-opus-4-5"],
                          "retry": {"backoff_base_s": 0.01, "backoff_max_s": 0.05}},
            "openai": {"protocol": "openai", "base_url": upstream_url, "api_key": PROVIDER_KEY_OPENAI,
                       "models": ["gpt-4o-mini", "gpt-4o", "gpt-4.1"],
                       "retry": {"backoff_base_s": 0.01, "backoff_max_s": 0.05}},
        },
    }
    for name, value in sections.items():
        if isinstance(value, dict) and isinstance(cfg.get(name), dict):
            merged = dict(cfg[name])
            merged.update(value)
            cfg[name] = merged
        else:
            cfg[name] = value
    return cfg
