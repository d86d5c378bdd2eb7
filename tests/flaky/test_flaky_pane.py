"""The Flaky pane in a tiny App: a run from the button and the key, progress, table, histogram, history."""

from __future__ import annotations

import asyncio
from pathlib import Path

from textual.app import App, ComposeResult
from textual.widgets import DataTable, ProgressBar, Static

from agentdeck.flaky.history import sessions
from agentdeck.store import connect
from agentdeck.tui.panes.flaky_pane import FlakyPane

MINI = Path(__file__).resolve().parent.parent / "flaky_fixtures" / "mini"


class PaneApp(App[None]):
    def __init__(self, pane: FlakyPane) -> None:
        super().__init__()
        self.pane = pane

    def compose(self) -> ComposeResult:
        yield self.pane


async def _wait_for_run(pane: FlakyPane, pilot, done_before: int, limit: float = 90.0) -> None:
    waited = 0.0
    while pane.sessions_run <= done_before and waited < limit:
        await pilot.pause(0.2)
        waited += 0.2
    assert pane.sessions_run > done_before, "the run did not finish in time"


async def test_flaky_pane_runs_the_suite_and_shows_verdicts(tmp_path: Path, fast_env: None) -> None:
    db = tmp_path / "agentdeck.db"
    pane = FlakyPane(db, MINI, runs=6, shuffles=2, alone_runs=8, workers=2, seed=5)
    app = PaneApp(pane)
    async with app.run_test(size=(140, 40)) as pilot:
        table = app.query_one("#flaky-table", DataTable)
        assert table.row_count == 0
        await pilot.click("#flaky-run")
        await pilot.pause()
        assert pane.running and pane.has_class("-running")
        await _wait_for_run(pane, pilot, 0)
        assert not pane.running
        assert table.row_count == 3
        verdicts = {str(table.get_row(k)[4]): str(table.get_row(k)[0]) for k in table.rows}
        assert verdicts == {
            "test_mini.py::test_ok": "stable",
            "test_mini.py::test_broken": "broken",
            "test_mini.py::test_dice": "flaky",
        }
        causes = {str(table.get_row(k)[4]): str(table.get_row(k)[3]) for k in table.rows}
        assert causes["test_mini.py::test_dice"] == "randomness"
        bar = app.query_one("#flaky-progress", ProgressBar)
        assert bar.progress == bar.total
        histogram = str(app.query_one("#flaky-histogram", Static).render())
        assert "Failure rates" in histogram and "█" in histogram
        # The first row (broken) is selected: its evidence and fix are shown.
        detail = str(app.query_one("#flaky-detail", Static).render())
        assert "test_broken" in detail and "Fix:" in detail

        # The key binding starts a second run; both are in the shared database.
        table.focus()
        await pilot.press("r")
        await pilot.pause()
        assert pane.running
        await _wait_for_run(pane, pilot, 1)
    conn = connect(db)
    try:
        assert [s.n_flaky for s in sessions(conn, str(MINI))] == [1, 1]
    finally:
        conn.close()


async def test_flaky_pane_shows_the_last_session_on_open_and_reports_errors(tmp_path: Path, fast_env: None) -> None:
    db = tmp_path / "agentdeck.db"
    first = FlakyPane(db, MINI, runs=3, shuffles=0, alone_runs=4, workers=2, seed=1)
    async with PaneApp(first).run_test(size=(140, 40)) as pilot:
        first.start()
        await _wait_for_run(first, pilot, 0)
    reopened = FlakyPane(db, MINI)
    app = PaneApp(reopened)
    async with app.run_test(size=(140, 40)) as pilot:
        for _ in range(50):
            if reopened.report is not None:
                break
            await asyncio.sleep(0.05)
            await pilot.pause()
        assert reopened.report is not None and reopened.report["runs"] == 3
        assert app.query_one("#flaky-table", DataTable).row_count == 3
        assert "last session" in str(app.query_one("#flaky-status", Static).render())

    empty = tmp_path / "no-tests"
    empty.mkdir()
    (empty / "pytest.ini").write_text("[pytest]\n")
    broken = FlakyPane(tmp_path / "other.db", empty, runs=2)
    async with PaneApp(broken).run_test(size=(140, 40)) as pilot:
        broken.start()
        await _wait_for_run(broken, pilot, 0)
        assert broken.has_class("-failed")
        status = str(broken.query_one("#flaky-status", Static).render()).lower()
        assert "could not run the tests" in status and "no tests" in status
