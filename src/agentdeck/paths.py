"""Where agentdeck keeps things on this machine: config, data, the live-gateway registry.

Why platformdirs: each system has its own places (XDG on Linux, ``~/Library/Application
Support`` on macOS, ``%APPDATA%`` on Windows), and a user who set ``XDG_CONFIG_HOME`` expects it
honoured. Why the legacy fallbacks: earlier versions used ``~/.config/agentdeck`` and
``~/.local/share/agentdeck`` everywhere; a config or database already there keeps being found.

Light on purpose (stdlib and platformdirs only): ``agentdeck statusline`` imports it.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

APP = "agentdeck"
LEGACY_CONFIG_DIR = "~/.config/agentdeck"
LEGACY_DATA_DIR = "~/.local/share/agentdeck"


def config_dir() -> Path:
    """The user's config directory for agentdeck (not created)."""
    import platformdirs

    return Path(platformdirs.user_config_dir(APP, appauthor=False))


def config_file() -> Path | None:
    """The user's config.toml if one exists: the platform's place first, then the legacy one."""
    for d in (config_dir(), Path(os.path.expanduser(LEGACY_CONFIG_DIR))):
        p = d / "config.toml"
        if p.is_file():
            return p
    return None


def config_dirs() -> list[Path]:
    """Config directories to search (for themes and the like), the platform's place first."""
    out = [config_dir()]
    legacy = Path(os.path.expanduser(LEGACY_CONFIG_DIR))
    if legacy != out[0]:
        out.append(legacy)
    return out


def default_data_dir() -> str:
    """The data directory when the config names none: the legacy one if it holds a database, else the platform's."""
    import platformdirs

    here = platformdirs.user_data_dir(APP, appauthor=False)
    legacy = os.path.expanduser(LEGACY_DATA_DIR)
    if legacy != here and os.path.isfile(os.path.join(legacy, "agentdeck.db")):
        return legacy
    return here


def runtime_dir() -> Path:
    """Where live gateways register (``$AGENTDECK_RUNTIME_DIR``, else the user's runtime dir); not created.

    On Linux that is ``$XDG_RUNTIME_DIR/agentdeck`` (a per-user tmpfs, emptied at logout), with
    platformdirs' fallback under /tmp when the variable is unset (its warning is silenced: the
    fallback is fine for a registry whose entries are checked against live pids anyway)."""
    env = os.environ.get("AGENTDECK_RUNTIME_DIR")
    if env:
        return Path(env)
    import platformdirs

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Path(platformdirs.user_runtime_dir(APP, appauthor=False))


def private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) and make it mode 0700: it holds admin tokens and call records."""
    path.mkdir(parents=True, exist_ok=True)
    try:
        os.chmod(path, 0o700)
    except OSError:
        pass
    return path
