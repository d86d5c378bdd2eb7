"""Themes as files a user can copy and edit: ``themes/*.toml`` -> ``textual.theme.Theme``.

Why TOML files and not Python: an on-call engineer who needs more contrast at 3 a.m. should
be able to copy ``dark.toml``, change two hex values and pass ``--theme mine`` without
touching code. The console uses only the theme's design variables (``$success`` for LIVE,
``$error`` for STOPPED, ``$warning`` for PAUSED and amber meters, ...), so every colour on
screen comes from these files.

Search order for a name: ``$AGENTDECK_THEMES_DIR``, ``themes/`` in the user's config dir
(``~/.config/agentdeck`` on Linux; the old place is still searched elsewhere), then the
themes shipped inside the package. ``--theme`` also accepts a path to a ``.toml`` file.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from textual.color import Color, ColorParseError
from textual.theme import Theme

from agentdeck.errors import ConfigError
from agentdeck.paths import config_dirs

PACKAGE_THEMES = Path(__file__).resolve().parent.parent / "themes"
DEFAULT_THEME = "dark"
_COLOR_KEYS = ("primary", "secondary", "warning", "error", "success", "accent", "foreground", "background",
               "surface", "panel", "boost")


def theme_dirs() -> list[Path]:
    dirs = []
    env = os.environ.get("AGENTDECK_THEMES_DIR")
    if env:
        dirs.append(Path(env).expanduser())
    dirs += [d / "themes" for d in config_dirs()]  # the platform's config dir, then ~/.config/agentdeck
    dirs.append(PACKAGE_THEMES)
    return dirs


def available_themes() -> dict[str, Path]:
    """Theme name -> file, earlier directories winning (so a user's copy overrides the shipped one)."""
    found: dict[str, Path] = {}
    for d in theme_dirs():
        if not d.is_dir():
            continue
        for p in sorted(d.glob("*.toml")):
            try:
                name = str(tomllib.loads(p.read_text("utf-8")).get("name") or p.stem)
            except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
                name = p.stem
            found.setdefault(name, p)
    return found


def load_theme_file(path: str | os.PathLike[str]) -> Theme:
    """Parse and validate one theme file; errors name the file, the key and what is wrong."""
    p = Path(path)
    try:
        data: dict[str, Any] = tomllib.loads(p.read_text("utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{p}: theme file not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{p}: cannot read theme: {e}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{p}: invalid TOML: {e}") from None
    unknown = set(data) - {"name", "dark", "colors", "variables", "luminosity_spread", "text_alpha"}
    if unknown:
        raise ConfigError(f"{p}: {sorted(unknown)[0]}: unknown key")
    colors = data.get("colors") or {}
    if not isinstance(colors, dict):
        raise ConfigError(f"{p}: colors: must be a table of name = \"#rrggbb\"")
    for k, v in colors.items():
        if k not in _COLOR_KEYS:
            raise ConfigError(f"{p}: colors.{k}: unknown colour (use {', '.join(_COLOR_KEYS)})")
        try:
            Color.parse(str(v))
        except ColorParseError:
            raise ConfigError(f"{p}: colors.{k}: {v!r} is not a colour") from None
    if "primary" not in colors:
        raise ConfigError(f"{p}: colors.primary: required")
    variables = data.get("variables") or {}
    if not isinstance(variables, dict):
        raise ConfigError(f"{p}: variables: must be a table")
    return Theme(
        name=str(data.get("name") or p.stem),
        dark=bool(data.get("dark", True)),
        luminosity_spread=float(data.get("luminosity_spread", 0.15)),
        text_alpha=float(data.get("text_alpha", 0.95)),
        variables={str(k): str(v) for k, v in variables.items()},
        **{k: str(v) for k, v in colors.items()},
    )


def load_all_themes() -> dict[str, Theme]:
    """Every theme that loads; a broken user file is skipped here (``resolve_theme`` reports it)."""
    out: dict[str, Theme] = {}
    for name, path in available_themes().items():
        try:
            out[name] = load_theme_file(path)
        except ConfigError:
            continue
    return out


def resolve_theme(name_or_path: str | None) -> Theme:
    """The theme for ``--theme``: a name from the search path or a path to a file."""
    wanted = name_or_path or DEFAULT_THEME
    if wanted.endswith(".toml") or os.sep in wanted:
        return load_theme_file(Path(wanted).expanduser())
    themes = available_themes()
    if wanted not in themes:
        raise ConfigError(f"--theme: no theme named {wanted!r} (available: {', '.join(sorted(themes))}; "
                          f"or pass a path to a .toml file)")
    return load_theme_file(themes[wanted])


def theme_rgb(theme: Theme, name: str, fallback: str = "primary") -> tuple[int, int, int]:
    """A theme colour as an RGB triple (for plotext, which draws outside Textual's CSS)."""
    value = getattr(theme, name, None) or getattr(theme, fallback, None) or theme.primary
    c = Color.parse(value)
    return (c.r, c.g, c.b)
