"""The console's Flaky pane: run the flaky-test runner, watch its progress, read verdicts and causes.

Why a self-contained widget: the console mounts it as a tab, the tests mount it alone in a
tiny App. It holds no rules: the runner (:mod:`agentdeck.flaky.runner`) does the work in a
thread worker, so the console stays live while tests run, and every result is stored in the
shared database, so the pane shows the last session as soon as it opens.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.widget import Widget
from textual.widgets import Button, DataTable, ProgressBar, Static

from agentdeck.errors import AgentdeckError
from agentdeck.flaky.report import histogram_lines, trend_lines

VERDICT_ORDER = {"broken": 0, "flaky": 1, "stable": 2}


class FlakyPane(Widget, can_focus=False):
    """Progress bar, results table, failure-rate histogram and the selected test's evidence."""

    DEFAULT_CSS = """
    FlakyPane { layout: vertical; height: 1fr; }
    FlakyPane #flaky-bar { height: 3; padding: 0 1; }
    FlakyPane #flaky-bar Button { margin-right: 1; min-width: 12; }
    FlakyPane #flaky-status { width: 1fr; height: 3; content-align: left middle; color: $text-muted; }
    FlakyPane #flaky-progress { height: 1; padding: 0 1; }
    FlakyPane #flaky-progress Bar > .bar--bar { color: $warning; }
    FlakyPane #flaky-progress Bar > .bar--complete { color: $success; }
    FlakyPane #flaky-body { height: 1fr; }
    FlakyPane #flaky-table { width: 3fr; height: 1fr; border: round $primary; }
    FlakyPane #flaky-side { width: 2fr; min-width: 30; height: 1fr; }
    FlakyPane #flaky-histogram { height: auto; border: round $primary; padding: 0 1; }
    FlakyPane #flaky-trend { height: auto; max-height: 14; border: round $primary; padding: 0 1; }
    FlakyPane #flaky-detail-box { height: 1fr; border: round $primary; }
    FlakyPane #flaky-detail { padding: 0 1; }
    FlakyPane.-running #flaky-status { color: $warning; }
    FlakyPane.-failed #flaky-status { color: $error; }
    """

    BINDINGS = [
        Binding("r", "run", "Run flaky tests"),
        Binding("x", "cancel", "Cancel run", show=False),
    ]

    def __init__(
        self,
        db_path: Path,
        project_dir: Path,
        *,
        runs: int = 50,
        shuffles: int = 10,
        alone_runs: int = 20,
        workers: int | None = None,
        seed: int | None = None,
        pytest_args: list[str] | None = None,
        timeout: float = 60.0,
        id: str | None = "flaky-pane",
    ) -> None:
        super().__init__(id=id)
        self.db_path = Path(db_path)
        self.project_dir = Path(project_dir)
        self.options: dict[str, Any] = {
            "runs": runs,
            "shuffles": shuffles,
            "alone_runs": alone_runs,
            "workers": workers,
            "seed": seed,
            "pytest_args": list(pytest_args or []),
            "timeout": timeout,
        }
        self.report: dict[str, Any] | None = None
        self.running = False
        self.sessions_run = 0
        self._cancel: threading.Event | None = None
        self._tests: list[dict[str, Any]] = []

    def compose(self) -> ComposeResult:
        with Horizontal(id="flaky-bar"):
            yield Button("Run (r)", id="flaky-run", variant="primary")
            yield Button("Cancel (x)", id="flaky-cancel", disabled=True)
            yield Static(f"project: {self.project_dir}", id="flaky-status")
        yield ProgressBar(id="flaky-progress", total=1, show_eta=False)
        with Horizontal(id="flaky-body"):
            yield DataTable(id="flaky-table", cursor_type="row", zebra_stripes=True)
            with Vertical(id="flaky-side"):
                yield Static(id="flaky-histogram")
                yield Static(id="flaky-trend")
                with VerticalScroll(id="flaky-detail-box"):
                    yield Static("Select a test to see its evidence and the recommended fix.", id="flaky-detail")

    def on_mount(self) -> None:
        table = self.query_one("#flaky-table", DataTable)
        for key, label in (
            ("verdict", "verdict"),
            ("rate", "rate"),
            ("runs", "fails/runs"),
            ("cause", "cause"),
            ("test", "test"),
        ):
            table.add_column(label, key=key)
        self._draw_histogram([])
        self._draw_trend([], [])
        self.run_worker(self._load_last, thread=True, group="flaky-load", exit_on_error=False)

    # -- loading the last session ------------------------------------------------------------
    def _load_last(self) -> None:
        if not self.db_path.exists():
            return
        loaded = self._read_history()
        if loaded is None:
            return
        doc, points, rows = loaded
        if doc is not None:
            self._from_thread(self._show, doc, "last session")
        self._from_thread(self._draw_trend, points, rows)

    def _read_history(self) -> tuple[dict[str, Any] | None, list[Any], list[Any]] | None:
        """The last session's report, the weekly flaky counts and the fixes being verified."""
        from agentdeck.flaky.history import compare, latest_report, trend
        from agentdeck.store import connect

        project = str(self.project_dir.resolve())
        try:
            conn = connect(self.db_path)
            try:
                return latest_report(conn, project), trend(conn, project, "week"), compare(conn, project)
            finally:
                conn.close()
        except Exception:  # noqa: BLE001 - an unreadable history must not break the pane
            return None

    def _from_thread(self, fn: Any, *args: Any) -> None:
        try:
            self.app.call_from_thread(fn, *args)
        except RuntimeError:  # the app is gone; nothing left to update
            if self._cancel is not None:
                self._cancel.set()

    # -- running ---------------------------------------------------------------------------
    def start(self) -> None:
        """Start a run (used by the console's command palette)."""
        self.action_run()

    def action_run(self) -> None:
        if self.running:
            self.notify("A flaky-test run is already in progress", severity="warning")
            return
        self.running = True
        self._cancel = threading.Event()
        self.set_class(True, "-running")
        self.set_class(False, "-failed")
        self.query_one("#flaky-run", Button).disabled = True
        self.query_one("#flaky-cancel", Button).disabled = False
        self.query_one("#flaky-progress", ProgressBar).update(total=1, progress=0)
        self._status(f"collecting tests in {self.project_dir} ...")
        self.run_worker(self._run, thread=True, exclusive=True, group="flaky-run", exit_on_error=False)

    def action_cancel(self) -> None:
        if self._cancel is not None and self.running:
            self._cancel.set()
            self._status("cancelling ...")

    @on(Button.Pressed, "#flaky-run")
    def _run_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_run()

    @on(Button.Pressed, "#flaky-cancel")
    def _cancel_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_cancel()

    def _run(self) -> None:
        from agentdeck.flaky.history import save_report
        from agentdeck.flaky.runner import FlakyOptions, run_flaky
        from agentdeck.flaky.scheduler import Cancelled
        from agentdeck.store import connect

        opts = FlakyOptions(project_dir=self.project_dir, **self.options)
        try:
            report = run_flaky(opts, progress=lambda p: self._from_thread(self._on_progress, p), cancel=self._cancel)
            conn = connect(self.db_path)
            try:
                save_report(conn, report)
            finally:
                conn.close()
            history = self._read_history()
        except Cancelled:
            self._from_thread(self._finished, "run cancelled", False)
            return
        except AgentdeckError as e:
            self._from_thread(self._finished, f"could not run the tests: {e}", True)
            return
        except Exception as e:  # noqa: BLE001 - shown in the pane rather than crashing the console
            self._from_thread(self._finished, f"the run failed: {type(e).__name__}: {e}", True)
            return
        self._from_thread(self._show, report.to_json(), "this run")
        if history is not None:
            self._from_thread(self._draw_trend, history[1], history[2])
        self._from_thread(self._finished, None, False)

    def _on_progress(self, p: Any) -> None:
        bar = self.query_one("#flaky-progress", ProgressBar)
        bar.update(total=max(p.total, 1), progress=p.done)
        failing = f" · {p.failing} test(s) failing so far" if p.failing else ""
        self._status(f"{p.label}: {p.done}/{p.total}{failing}")

    def _finished(self, message: str | None, failed: bool) -> None:
        self.running = False
        self.sessions_run += 1
        self.set_class(False, "-running")
        self.set_class(failed, "-failed")
        self.query_one("#flaky-run", Button).disabled = False
        self.query_one("#flaky-cancel", Button).disabled = True
        if message is not None:
            self._status(message)
        else:
            bar = self.query_one("#flaky-progress", ProgressBar)
            bar.update(total=1, progress=1)

    def on_unmount(self) -> None:
        if self._cancel is not None:
            self._cancel.set()

    # -- showing results -----------------------------------------------------------------------
    def _status(self, text: str) -> None:
        self.query_one("#flaky-status", Static).update(Content(text))

    def _show(self, doc: dict[str, Any], source: str) -> None:
        self.report = doc
        tests = sorted(
            doc.get("tests", []), key=lambda t: (VERDICT_ORDER.get(t["verdict"], 3), -t["failure_rate"], t["nodeid"])
        )
        self._tests = tests
        variables = self.app.get_css_variables()  # the theme's colours, so verdicts follow theme switches
        colour = {
            "broken": variables.get("error"),
            "flaky": variables.get("warning"),
            "stable": variables.get("success"),
        }
        table = self.query_one("#flaky-table", DataTable)
        table.clear()
        for t in tests:
            style = f"bold {colour.get(t['verdict']) or ''}".strip()
            table.add_row(
                Text(t["verdict"], style=style),
                f"{100 * t['failure_rate']:.0f}%",
                f"{t['failures']}/{t['runs']}",
                t.get("root_cause") or "",
                t["nodeid"],
                key=t["nodeid"],
            )
        summary = doc.get("summary") or {}
        counts = (
            f"{summary.get('tests', len(tests))} tests: {summary.get('stable', 0)} stable, "
            f"{summary.get('flaky', 0)} flaky, {summary.get('broken', 0)} broken"
        )
        took = f" in {doc['duration_s']:.0f} s" if "duration_s" in doc else ""
        self._status(f"{source}: {counts} ({doc.get('runs')} runs{took})")
        self._draw_histogram([t["failure_rate"] for t in tests if t["failures"]])
        if tests:
            self._show_detail(tests[0])

    def _draw_histogram(self, rates: list[float]) -> None:
        if not rates:
            body = Content.from_markup("[b]Failure rates[/b]\n[$text-muted]no failing tests yet[/]")
        else:
            lines = ["[b]Failure rates[/b] (tests that failed at least once)"]
            for label, bar, count in histogram_lines(rates, width=20):
                colour = "$error" if label.strip().startswith("90") else "$warning"
                lines.append(f"{label} [{colour}]{bar or ' '}[/] {count}" if count else f"{label} [$text-muted]·[/]")
            body = Content.from_markup("\n".join(lines))
        self.query_one("#flaky-histogram", Static).update(body)

    def _draw_trend(self, points: list[Any], rows: list[Any]) -> None:
        """Flaky tests per week (the count that should reach zero) and each fix's clean runs so far."""
        if not points:
            body = Content.from_markup("[b]Flaky tests per week[/b]\n[$text-muted]no sessions yet[/]")
        else:
            lines = ["[b]Flaky tests per week[/b]"]
            for period, bar, count in trend_lines(points[-8:], width=16):
                colour = "$warning" if count else "$success"
                lines.append(f"{period} [{colour}]{bar or '·'}[/] {count}")
            verifying = [c for c in rows if c.status != "still failing"][:4]
            if verifying:
                lines.append("[b]Fixes being verified[/b] (clean runs / needed)")
                for c in verifying:
                    clean = c.after_runs if not c.after_failures else 0
                    name = c.nodeid.split("::")[-1].replace("[", "\\[")
                    lines.append(f"{name}: {clean}/{c.needed} {c.status}")
            body = Content.from_markup("\n".join(lines))
        self.query_one("#flaky-trend", Static).update(body)

    def _show_detail(self, t: dict[str, Any]) -> None:
        parts = [Content.from_markup("[b]$nodeid[/b]", nodeid=t["nodeid"])]
        head = f"{t['verdict']}" + (f" · cause: {t['root_cause']}" if t.get("root_cause") else "")
        if t.get("confidence") is not None and t.get("root_cause"):
            kind = t.get("evidence_kind") or ""
            head += f" ({100 * t['confidence']:.0f}% confident, {kind}{'' if t.get('confirmed') else ', unconfirmed'})"
        if t.get("latent"):
            head += " · latent (fails only under stress)"
        parts.append(Content(f"{head} · failed {t['failures']} of {t['runs']} runs"))
        for e in t.get("evidence", []):
            parts.append(Content(f"• {e}"))
        if t.get("recommendation"):
            parts.append(Content.from_markup("[b $primary]Fix:[/] $rec", rec=t["recommendation"]))
        self.query_one("#flaky-detail", Static).update(Content("\n").join(parts))

    @on(DataTable.RowHighlighted, "#flaky-table")
    def _row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        key = event.row_key.value if event.row_key is not None else None
        for t in self._tests:
            if t["nodeid"] == key:
                self._show_detail(t)
                break
