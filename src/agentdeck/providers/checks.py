"""Start-up warnings about provider sections that will fail their first call.

Why warnings and not errors: the built-in defaults and sample config name both hosted
providers, and a user with only one key must still be able to start the gateway. An empty key
is said once at start (naming the variable to set, never a key's value) instead of surfacing
as a provider 401 in the middle of an agent's run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from agentdeck.config import Config

_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


def provider_warnings(cfg: "Config") -> list[str]:
    """One line per provider with no API key (local ones and loopback hosts excepted), or with no models."""
    out: list[str] = []
    for name, p in cfg.providers.items():
        if not p.models:
            out.append(f"provider '{name}' lists no models: it serves nothing until providers.{name}.models names some")
        if p.api_key or p.is_local or (urlsplit(p.base_url).hostname or "") in _LOOPBACK:
            continue
        where = (f"set the environment variable {p.api_key_env}" if p.api_key_env
                 else f"set providers.{name}.api_key (e.g. \"${{MY_KEY_VARIABLE}}\")")
        out.append(f"provider '{name}' has no API key: {where}; its calls will be refused by {p.base_url}")
    return out
