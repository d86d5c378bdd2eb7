"""Presets for the common OpenAI-compatible hosts, and the provider ids prices are looked up under.

Why a table and not documentation: a preset is the SDK's own spelling of each host's base_url
(REFERENCE.md "base_url conventions"), so a user writes `preset = "groq"` instead of copying a
URL that differs per host in where its version sits. Explicit keys in a provider section win
over the preset; the table only fills what is missing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping
from urllib.parse import urlsplit


@dataclass(frozen=True, slots=True)
class Preset:
    """What a preset fills in: protocol, base_url, the key's environment variable, the price provider."""

    base_url: str
    key_env: str
    price_provider: str
    local: bool = False
    protocol: str = "openai"


PRESETS: dict[str, Preset] = {
    "openrouter": Preset("https://openrouter.ai/api/v1", "OPENROUTER_API_KEY", "openrouter"),
    "groq": Preset("https://api.groq.com/openai/v1", "GROQ_API_KEY", "groq"),
    "gemini-openai": Preset("https://generativelanguage.googleapis.com/v1beta/openai", "GEMINI_API_KEY", "google"),
    "ollama": Preset("http://127.0.0.1:11434/v1", "", "ollama", local=True),
    "vllm": Preset("http://127.0.0.1:8000/v1", "", "vllm", local=True),
    "deepseek": Preset("https://api.deepseek.com", "DEEPSEEK_API_KEY", "deepseek"),
    "mistral": Preset("https://api.mistral.ai/v1", "MISTRAL_API_KEY", "mistral"),
    "together": Preset("https://api.together.xyz/v1", "TOGETHER_API_KEY", "together"),
}

# Hosts whose price provider is known without a preset (a hand-written section for a preset host
# is priced like the preset would be). Ids are genai-prices provider ids.
_HOST_PRICE_PROVIDER: dict[str, str] = {
    "api.anthropic.com": "anthropic",
    "api.openai.com": "openai",
    **{urlsplit(p.base_url).hostname or "": p.price_provider for p in PRESETS.values() if not p.local},
}

# A protocol whose genai-prices provider id is not its own name.
_PROTOCOL_PRICE_PROVIDER: dict[str, str] = {"gemini": "google"}

# The providers a config has when it names none. Raw sections (like a TOML table) so they take
# the same path as a user's: `${NAME}` expansion, api_key_env, validation.
DEFAULT_PROVIDER_SECTIONS: dict[str, dict[str, Any]] = {
    "anthropic": {
        "protocol": "anthropic",
        "base_url": "https://api.anthropic.com",
        "api_key_env": "ANTHROPIC_API_KEY",
        "models": ["claude-*"],
    },
    "openai": {
        "protocol": "openai",
        "base_url": "https://api.openai.com/v1",
        "api_key_env": "OPENAI_API_KEY",
        "models": ["gpt-*", "o[0-9]*", "chatgpt-*", "codex-*"],
    },
}


def preset_names() -> str:
    """The presets as one comma-separated list, for error messages."""
    return ", ".join(PRESETS)


def fill_preset(section: Mapping[str, Any]) -> dict[str, Any]:
    """The section with the preset's protocol, base_url and api_key_env filled where missing.

    An unknown or malformed preset is returned unchanged: the validator reports it with its key path.
    """
    out = dict(section)
    name = out.get("preset")
    preset = PRESETS.get(name) if isinstance(name, str) else None
    if preset is None:
        return out
    out.setdefault("protocol", preset.protocol)
    out.setdefault("base_url", preset.base_url)
    if preset.key_env:
        out.setdefault("api_key_env", preset.key_env)
    return out


def price_provider_for(preset: str | None, protocol: str, base_url: str) -> str:
    """The genai-prices provider id for a provider: its preset's, else its host's, else its protocol's."""
    if preset in PRESETS:
        return PRESETS[preset].price_provider
    host = (urlsplit(base_url).hostname or "").lower()
    return _HOST_PRICE_PROVIDER.get(host, _PROTOCOL_PRICE_PROVIDER.get(protocol, protocol))
