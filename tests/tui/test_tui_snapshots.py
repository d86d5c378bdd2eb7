"""Snapshots of each pane and modal with scripted, deterministic data (pytest-textual-snapshot).

Update after an intended visual change with ``pytest tests/tui --snapshot-update`` and look
at the SVGs in ``tests/tui/__snapshots__/`` before committing them.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from tui_scripted import T0, ReplayEngine, make_request, scripted_events, status_doc

from agentdeck.tui.app import ConsoleApp
from agentdeck.tui.theme import resolve_theme

BIG, SMALL = (140, 45), (80, 24)
DB_DIR = Path(tempfile.mkdtemp(prefix="agentdeck-tui-snapshots-"))
PROJECT_DIR = Path("/srv/example-project")  # shown on the Flaky pane; never read (nothing is run)


def scripted_app(theme: str | None = None) -> ConsoleApp:
    eng = ReplayEngine(scripted_events(120))
    eng.status_doc = status_doc(
        keys={"claude-code": {"day_usd": 4.21, "budget_usd": None}, "codex": {"day_usd": 1.73, "budget_usd": None},
              "batch-pipeline": {"day_usd": 2.95, "budget_usd": 150.0}, "aider": {"day_usd": 0.64, "budget_usd": None}},
        hour_usd=47.6, day_usd=50.6, hourly_usd=50.0, daily_usd=1000.0,
        sessions={"codex": {"budget_usd": None, "max_requests": 500, "requests": 137}})
    app = ConsoleApp(eng, theme=resolve_theme(theme) if theme else None, db_path=DB_DIR / "agentdeck.db",
                     project_dir=PROJECT_DIR)
    app.clock = lambda: T0 + 121
    return app


def keys(*pressed: str, wait: float = 0.6) -> Any:
    async def run_before(pilot: Any) -> None:
        await pilot.pause(0.3)
        for k in pressed:
            await pilot.press(k)
            await pilot.pause(0.1)
        await pilot.pause(wait)
    return run_before


def test_routing_pane(snap_compare: Any) -> None:
    assert snap_compare(scripted_app(), terminal_size=BIG, run_before=keys())


def test_routing_pane_small_terminal(snap_compare: Any) -> None:
    assert snap_compare(scripted_app(), terminal_size=SMALL, run_before=keys())


def test_routing_paused_and_filtered(snap_compare: Any) -> None:
    assert snap_compare(scripted_app(), terminal_size=BIG,
                        run_before=keys("p", "slash", *"smart", "enter"))


def test_providers_pane(snap_compare: Any) -> None:
    assert snap_compare(scripted_app(), terminal_size=BIG, run_before=keys("2"))


def test_providers_pane_high_contrast(snap_compare: Any) -> None:
    assert snap_compare(scripted_app("high-contrast"), terminal_size=BIG, run_before=keys("2"))


def test_budget_pane(snap_compare: Any) -> None:
    assert snap_compare(scripted_app(), terminal_size=BIG, run_before=keys("3", wait=1.0))


def test_budget_pane_light_small(snap_compare: Any) -> None:
    assert snap_compare(scripted_app("light"), terminal_size=SMALL, run_before=keys("3", wait=1.0))


def test_diagnose_pane(snap_compare: Any) -> None:
    assert snap_compare(scripted_app(), terminal_size=BIG, run_before=keys("4"))


def test_flaky_pane(snap_compare: Any) -> None:
    assert snap_compare(scripted_app(), terminal_size=BIG, run_before=keys("5"))


def test_stop_modal(snap_compare: Any) -> None:
    assert snap_compare(scripted_app(), terminal_size=BIG, run_before=keys("exclamation_mark"))


def test_failed_call_details(snap_compare: Any) -> None:
    app = scripted_app()
    assert isinstance(app.engine, ReplayEngine)
    app.engine.push([make_request(999, status=502, error="upstream unavailable after 3 attempts", ts=T0 + 120.5)])
    assert snap_compare(app, terminal_size=BIG, run_before=keys("enter"))
