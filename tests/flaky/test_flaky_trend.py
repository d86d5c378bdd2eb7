"""The trend the seed measures success by: flaky tests per week/month, trending to zero, and each fix's verification.

Real SQLite files in tmp_path; sessions dated in chosen weeks; the command line and the
console pane both read them.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

from flaky_support import FAST, session
from textual.app import App, ComposeResult
from textual.widgets import Static

from agentdeck.flaky.history import save_report, trend
from agentdeck.store import connect
from agentdeck.tui.panes.flaky_pane import FlakyPane


def _ts(day: str) -> float:
    return dt.datetime.fromisoformat(day).replace(tzinfo=dt.timezone.utc).timestamp()


FLAKY, CLEAN = {0: ["failed", "passed", "passed", "passed"], 1: ["passed"] * 4}, {0: ["passed"] * 40, 1: ["passed"] * 40}
DAYS = [  # (day, outcomes): flaky twice in the week of Nov 2, then fixed and verified
    ("2026-11-02T10:00:00", FLAKY),
    ("2026-11-04T10:00:00", FLAKY),
    ("2026-11-10T10:00:00", CLEAN),
    ("2026-12-01T10:00:00", CLEAN),
]


def _fill(db: Path, project: str) -> None:
    conn = connect(db)
    try:
        for day, outcomes in DAYS:
            report = session(outcomes, _ts(day))
            report.project = project
            save_report(conn, report)
    finally:
        conn.close()


def test_the_flaky_count_per_week_and_month_is_the_last_session_of_each(tmp_path: Path) -> None:
    db = tmp_path / "agentdeck.db"
    _fill(db, "/proj")
    conn = connect(db)
    try:
        weeks = trend(conn, "/proj", "week")
        months = trend(conn, "/proj", "month")
    finally:
        conn.close()
    # Two sessions in one week count once (the week's last): running more often must not raise the line.
    assert [(p.period, p.flaky, p.sessions) for p in weeks] == [("2026-W45", 1, 2), ("2026-W46", 0, 1), ("2026-W49", 0, 1)]
    assert [(p.period, p.flaky, p.sessions) for p in months] == [("2026-11", 0, 3), ("2026-12", 0, 1)]


def test_history_command_plots_the_trend_and_verifies_the_fix(tmp_path: Path, config_file: Path) -> None:
    proj = tmp_path / "proj"
    proj.mkdir()
    data = tmp_path / "data"
    data.mkdir()
    _fill(data / "agentdeck.db", str(proj.resolve()))
    env = dict(os.environ, AGENTDECK_CONFIG=str(config_file), **FAST)
    out = subprocess.run(
        [sys.executable, "-m", "agentdeck", "flaky", "--history", "--json", "-"],
        cwd=proj, env=env, capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert [p["flaky"] for p in doc["periods"]] == [1, 0, 0]
    [fix] = doc["tests"]
    # Failed 1 of 4 (p = 0.25): n = ln(0.05)/ln(0.75) = 11 clean runs; 80 ran since.
    assert fix["status"] == "fixed" and fix["clean_runs_needed"] == 11 and fix["after"]["runs"] == 80
    text = subprocess.run(
        [sys.executable, "-m", "agentdeck", "flaky", "--history", "--by", "month"],
        cwd=proj, env=env, capture_output=True, text=True, timeout=60,
    )
    assert "Flaky tests per month" in text.stdout and "2026-11" in text.stdout and "80/11" in text.stdout


class PaneApp(App[None]):
    def __init__(self, pane: FlakyPane) -> None:
        super().__init__()
        self.pane = pane

    def compose(self) -> ComposeResult:
        yield self.pane


async def test_the_console_pane_shows_the_weekly_trend(tmp_path: Path) -> None:
    proj = tmp_path / "proj"
    proj.mkdir()
    db = tmp_path / "agentdeck.db"
    _fill(db, str(proj.resolve()))
    app = PaneApp(FlakyPane(db, proj))
    async with app.run_test(size=(140, 40)) as pilot:
        trend_box = app.query_one("#flaky-trend", Static)
        for _ in range(50):
            await pilot.pause(0.05)
            if "2026-W45" in str(trend_box.render()):
                break
        text = str(trend_box.render())
        assert "Flaky tests per week" in text and "2026-W45" in text and "2026-W49" in text
        assert "test_race: 80/11 fixed" in text
