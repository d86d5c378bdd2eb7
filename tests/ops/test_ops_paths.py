"""Paths from platformdirs (XDG on Linux) with the old places still found: a config in $XDG_CONFIG_HOME is
used, one in ~/.config/agentdeck still is when XDG_CONFIG_HOME points elsewhere, data under $XDG_DATA_HOME."""

from __future__ import annotations

import json
from pathlib import Path

from ops_support import agentdeck

FAST = "fix a typo in the README"


def _tiers(model: str) -> str:
    return f'[routing.tiers]\nfast = {{ anthropic = "{model}", openai = "gpt-4o-mini" }}\n'


def test_xdg_config_home_is_honoured_and_the_old_place_still_found(tmp_path: Path, env: dict[str, str]) -> None:
    home = Path(env["HOME"])
    xdg = tmp_path / "xdg-config"
    (xdg / "agentdeck").mkdir(parents=True)
    (xdg / "agentdeck" / "config.toml").write_text(_tiers("model-from-xdg"))
    (home / ".config" / "agentdeck").mkdir(parents=True)
    (home / ".config" / "agentdeck" / "config.toml").write_text(_tiers("model-from-legacy"))

    p = agentdeck({**env, "XDG_CONFIG_HOME": str(xdg)}, "route", "--json", FAST)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["model"] == "model-from-xdg"

    (xdg / "agentdeck" / "config.toml").unlink()
    p = agentdeck({**env, "XDG_CONFIG_HOME": str(xdg)}, "route", "--json", FAST)
    assert json.loads(p.stdout)["model"] == "model-from-legacy", "the old ~/.config/agentdeck is still read"


def test_data_dir_follows_xdg_data_home(tmp_path: Path, env: dict[str, str]) -> None:
    xdg_data = tmp_path / "xdg-data"
    p = agentdeck({**env, "XDG_DATA_HOME": str(xdg_data)}, "diagnose", "list", "--json")
    assert p.returncode == 0, p.stderr
    assert (xdg_data / "agentdeck" / "agentdeck.db").is_file()
