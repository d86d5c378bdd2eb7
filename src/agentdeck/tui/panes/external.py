"""The Diagnose and Flaky panes are written elsewhere; mount them when they import, else say how to use the tool.

Why a placeholder with instructions rather than an empty tab: a dead tab in an emergency
console teaches people to ignore tabs. Until the real pane lands, the tab says what the
tool does and which command runs it today.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from textual.widget import Widget
from textual.widgets import Static

DIAGNOSE_HOWTO = (
    "Diagnose: work out why an LLM coding call went wrong with the five-point framework "
    "(context, model, rules, testing, quality gate) and keep a log of fixes.\n\n"
    "How to use it now: run `agentdeck diagnose` in a terminal, or `agentdeck diagnose suggest \"<error text>\"` "
    "for a quick category. From the Routing pane, enter on a failed call then d sends it here."
)
FLAKY_HOWTO = (
    "Flaky: run your test suite many times (same order, isolated, shuffled) and name the root cause of "
    "each flaky test (timing, dependency, resource, state, randomness).\n\n"
    "How to use it now: run `agentdeck flaky --runs 50` in your project directory "
    "(add `--json report.json` for CI, `--max-rate 0.01` to fail the build)."
)


class PanePlaceholder(Static):
    """A one-screen how-to standing in for a pane that is not installed (yet)."""

    DEFAULT_CSS = """
    PanePlaceholder { padding: 1 2; color: $foreground; height: 1fr; }
    """

    def __init__(self, text: str, *, problem: str | None = None, id: str | None = None) -> None:
        body = text if problem is None else f"{text}\n\n(the pane could not be loaded: {problem})"
        super().__init__(body, id=id)


def _load(module: str, cls: str) -> tuple[type | None, str | None]:
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name == module:
            return None, None
        return None, f"{type(e).__name__}: {e}"
    except Exception as e:  # a half-written pane must not take the console down
        return None, f"{type(e).__name__}: {e}"
    found = getattr(mod, cls, None)
    return (found, None) if isinstance(found, type) else (None, f"{module} has no {cls}")


def diagnose_pane(db_path: Path, project_dir: Path | None = None) -> Widget:
    cls, problem = _load("agentdeck.tui.panes.diagnose_pane", "DiagnosePane")
    if cls is None:
        return PanePlaceholder(DIAGNOSE_HOWTO, problem=problem, id="diagnose-placeholder")
    try:
        try:
            return cls(db_path, project_dir=project_dir)  # type: ignore[no-any-return]
        except TypeError:  # a pane that only takes the contract's (db_path, prefill=None)
            return cls(db_path)  # type: ignore[no-any-return]
    except Exception as e:
        return PanePlaceholder(DIAGNOSE_HOWTO, problem=f"{type(e).__name__}: {e}", id="diagnose-placeholder")


def flaky_pane(db_path: Path, project_dir: Path) -> Widget:
    cls, problem = _load("agentdeck.tui.panes.flaky_pane", "FlakyPane")
    if cls is None:
        return PanePlaceholder(FLAKY_HOWTO, problem=problem, id="flaky-placeholder")
    try:
        return cls(db_path, project_dir)  # type: ignore[no-any-return]
    except Exception as e:
        return PanePlaceholder(FLAKY_HOWTO, problem=f"{type(e).__name__}: {e}", id="flaky-placeholder")


def start_diagnosis(widget: Widget, prefill: Any) -> bool:
    """Ask the Diagnose pane to start (with the failed call's error text, or empty). False if it cannot."""
    start = getattr(widget, "start", None)
    if not callable(start):
        return False
    start(prefill)
    return True


def run_flaky(widget: Widget) -> bool:
    """Ask the Flaky pane to start a run, if it offers a way to."""
    for name in ("start", "run_tests", "action_run"):
        fn = getattr(widget, name, None)
        if callable(fn):
            fn()
            return True
    return False
