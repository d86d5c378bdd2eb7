"""Theme files: the shipped ones load, the package copy matches the top-level folder, errors are clear."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentdeck.errors import ConfigError
from agentdeck.tui.theme import PACKAGE_THEMES, available_themes, load_theme_file, resolve_theme

REPO_THEMES = Path(__file__).resolve().parents[2] / "themes"


def test_dark_light_and_high_contrast_ship_in_both_places_identically() -> None:
    for name in ("dark", "light", "high-contrast"):
        top, packaged = REPO_THEMES / f"{name}.toml", PACKAGE_THEMES / f"{name}.toml"
        assert top.read_text() == packaged.read_text(), f"themes/{name}.toml and the package copy differ"
        theme = load_theme_file(top)
        assert theme.name == name
    assert resolve_theme(None).name == "dark"
    assert resolve_theme("light").dark is False


def test_a_user_theme_overrides_and_a_path_works(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mine = tmp_path / "night.toml"
    mine.write_text('name = "night"\ndark = true\n[colors]\nprimary = "#112233"\nerror = "#ff0000"\n')
    monkeypatch.setenv("AGENTDECK_THEMES_DIR", str(tmp_path))
    assert "night" in available_themes()
    assert resolve_theme("night").primary == "#112233"
    assert resolve_theme(str(mine)).error == "#ff0000"


def test_bad_theme_files_name_the_file_and_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "bad"\n[colors]\nprimary = "not-a-colour"\n')
    with pytest.raises(ConfigError, match=r"bad.toml: colors.primary: 'not-a-colour' is not a colour"):
        load_theme_file(bad)
    bad.write_text('name = "bad"\n[colors]\nprimary = "#000000"\nshiny = "#ffffff"\n')
    with pytest.raises(ConfigError, match="colors.shiny: unknown colour"):
        load_theme_file(bad)
    with pytest.raises(ConfigError, match="no theme named 'nope'"):
        resolve_theme("nope")
