"""The console's diagnosis pane, mounted alone in a tiny App and driven with Textual's Pilot."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from textual.app import App, ComposeResult
from textual.pilot import Pilot
from textual.widgets import Button, DataTable, Input, Static, TextArea

from agentdeck.diagnose import log as dlog
from agentdeck.diagnose.wizard import Step
from agentdeck.store import connect
from agentdeck.tui.panes.diagnose_pane import DiagnosePane


class PaneApp(App[None]):
    def __init__(self, db: Path, project: Path, prefill: str = "") -> None:
        super().__init__()
        self.db, self.project, self.prefill = db, project, prefill
        self.saved: list[DiagnosePane.Saved] = []

    def compose(self) -> ComposeResult:
        yield DiagnosePane(self.db, self.prefill, project_dir=self.project)

    def on_diagnose_pane_saved(self, event: DiagnosePane.Saved) -> None:
        self.saved.append(event)


async def click(pilot: Pilot[None], selector: str) -> None:
    """Scroll the widget into view first: a real user scrolls too.

    A Textual button ignores clicks for 0.2 s after a press (its "-active" effect), so clicking
    the same button again (Yes, Yes, Yes) waits for that to end, as a person would; otherwise
    the second click is dropped whenever the machine happens to be fast."""
    widget = pilot.app.query_one(selector)
    widget.scroll_visible(animate=False)
    await pilot.pause()
    while widget.has_class("-active"):
        await pilot.pause(0.05)
    await pilot.click(selector)
    await pilot.pause()


def text_of(pilot: Pilot[None], selector: str) -> str:
    return str(pilot.app.query_one(selector, Static).render())


async def settle(pilot: Pilot[None]) -> None:
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


async def test_walk_the_pane_redirect_rule_append_save_and_mark_stuck(tmp_path: Path) -> None:
    db = tmp_path / "agentdeck.db"
    project = tmp_path / "proj"
    project.mkdir()
    app = PaneApp(db, project)
    async with app.run_test(size=(110, 48)) as pilot:
        pane = app.query_one(DiagnosePane)
        await settle(pilot)
        assert pane.step is Step.DESCRIBE
        # Empty error: a clear message, no step change.
        await click(pilot, "#dx-suggest")
        assert "describe the error first" in text_of(pilot, "#dx-message") and pane.step is Step.DESCRIBE

        await click(pilot, "#dx-error")
        await pilot.press(*"Used moment")  # typed; the rest pasted, as a user would paste a long error
        app.query_one("#dx-error", TextArea).insert(".js although the project uses date-fns")
        await click(pilot, "#dx-suggest")
        assert pane.step is Step.SUGGEST
        suggestion = text_of(pilot, "#dx-suggestion")
        assert "Suggested: Context" in suggestion and "confidence" in suggestion
        assert "the project uses" in suggestion, "the reasons quote the phrases that drove it"

        await click(pilot, "#dx-examine")
        assert pane.step is Step.QUESTIONS and "question 1 of 3" in text_of(pilot, "#dx-question-head")
        for answer in ("#dx-yes", "#dx-yes", "#dx-yes"):  # the example and the docs WERE there
            await click(pilot, answer)
        assert pane.step is Step.VERDICT
        assert "point to Rules" in text_of(pilot, "#dx-verdict-text")
        follow = app.query_one("#dx-follow", Button)
        assert follow.display and str(follow.label) == "Examine Rules"
        await click(pilot, "#dx-follow")
        assert pane.wizard.examining == "rules"
        for answer in ("#dx-no", "#dx-no", "#dx-yes"):
            await click(pilot, answer)
        assert "Confirmed: Rules" in text_of(pilot, "#dx-verdict-text")
        await click(pilot, "#dx-accept")
        assert pane.step is Step.ROOT_CAUSE

        app.query_one("#dx-note", Input).value = "date library not in CLAUDE.md"
        await click(pilot, "#dx-root-next")
        assert pane.step is Step.FIXES
        await click(pilot, "#dx-fixes-next")  # the first fix (explicit rule) is preselected
        assert pane.step is Step.APPLY and pane.wizard.needs_rule
        assert not app.query_one("#dx-rule-box").has_class("-hidden")

        app.query_one("#dx-rule", Input).value = "Format dates with date-fns"
        await click(pilot, "#dx-do-not")
        await pilot.press(*"import moment")
        assert app.query_one("#dx-rule-write", Button).disabled, "no write before the diff is shown"
        await click(pilot, "#dx-rule-preview")
        assert "+- Format dates with date-fns" in text_of(pilot, "#dx-rule-diff")
        assert not (project / "CLAUDE.md").exists()
        await click(pilot, "#dx-rule-write")
        assert "  - DO NOT: import moment" in (project / "CLAUDE.md").read_text()

        await click(pilot, "#dx-save")
        await settle(pilot)
        assert pane.step is Step.SAVED
        assert "Saved #1" in text_of(pilot, "#dx-saved-text")
        assert [(e.entry_id, e.category) for e in app.saved] == [(1, "rules")]

        table = app.query_one("#dx-log", DataTable)
        assert table.row_count == 1
        table.focus()
        await pilot.press("s")
        await settle(pilot)
        assert "Stuck" in str(table.get_row_at(0)[4])
        assert "recurrence rate 0%" in text_of(pilot, "#dx-figures")

    conn = connect(db)
    try:
        e = dlog.get(conn, 1)
    finally:
        conn.close()
    assert e.category == "rules" and e.suggested == "context" and e.outcome == "stuck" and e.source == "console"
    assert e.root_cause == "date library not in CLAUDE.md" and e.fix.endswith("rule appended to CLAUDE.md")
    assert e.diagnose_seconds is not None and e.diagnose_seconds > 0


async def test_start_prefills_from_a_failed_call_and_skip_goes_straight_to_root_cause(tmp_path: Path) -> None:
    app = PaneApp(tmp_path / "agentdeck.db", tmp_path)
    async with app.run_test(size=(110, 48)) as pilot:
        pane = app.query_one(DiagnosePane)
        await settle(pilot)
        pane.start("Passes unit tests but fails integration", source="request")
        await pilot.pause()
        assert app.query_one("#dx-error", TextArea).text == "Passes unit tests but fails integration"
        assert pane.wizard.source == "request"
        await click(pilot, "#dx-suggest")
        await click(pilot, "#dx-skip")
        assert pane.step is Step.ROOT_CAUSE and pane.wizard.primary == "testing"
        await pilot.press("ctrl+b")  # back
        assert pane.step is Step.SUGGEST
        await click(pilot, "#dx-skip")
        await click(pilot, "#dx-root-next")
        await click(pilot, "#dx-fixes-next")
        assert not pane.wizard.needs_rule and app.query_one("#dx-rule-box").has_class("-hidden")
        await click(pilot, "#dx-save")
        await settle(pilot)
        assert pane.step is Step.SAVED and pane.last_entry is not None
        assert pane.last_entry.fix == "Test behaviour, not presence"
        await click(pilot, "#dx-new")
        assert pane.step is Step.DESCRIBE and app.query_one("#dx-error", TextArea).text == ""


def test_pane_css_uses_theme_variables_only() -> None:
    import re

    css = DiagnosePane.DEFAULT_CSS
    assert "$primary" in css and "$error" in css and "$success" in css and "$warning" in css
    assert not re.search(r"#[0-9a-fA-F]{3,8}\b|rgb\(|\b(?:red|green|blue|yellow|white|black)\b", css)


def test_domain_code_never_imports_textual() -> None:
    code = (
        "import sys\n"
        "import agentdeck.diagnose, agentdeck.diagnose.log, agentdeck.diagnose.wizard, agentdeck.diagnose.terminal\n"
        "import agentdeck.diagnose.rules_file, agentdeck.diagnose.second_opinion, agentdeck.cli.diagnose\n"
        "print([m for m in sys.modules if m == 'textual' or m.startswith('textual.')])\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


async def test_second_opinion_shows_beside_the_suggestion_without_blocking(tmp_path: Path) -> None:
    from agentdeck.diagnose.second_opinion import SecondOpinion

    calls: list[str] = []

    def opinion(error: str) -> SecondOpinion | None:
        calls.append(error)
        return SecondOpinion("quality_gate", "a linter would catch it", "claude-haiku-4-5")

    class OpinionApp(PaneApp):
        def compose(self) -> ComposeResult:
            yield DiagnosePane(self.db, "Route handler queries the database directly", project_dir=self.project,
                               second_opinion=opinion)

    app = OpinionApp(tmp_path / "agentdeck.db", tmp_path)
    async with app.run_test(size=(110, 48)) as pilot:
        await settle(pilot)
        await click(pilot, "#dx-suggest")
        await settle(pilot)
        shown = text_of(pilot, "#dx-suggestion")
        assert calls == ["Route handler queries the database directly"]
        assert "Second opinion (claude-haiku-4-5, agrees): Quality Gate: a linter would catch it" in shown
