"""The console's diagnosis pane: the five-point wizard, step by step, over the shared state machine.

Why a self-contained widget: the console opens it from a failed call (``start(prefill)``), the
flaky pane from a failed test, and the tests mount it alone in a tiny App. It owns no rules of its
own: every transition goes through :class:`agentdeck.diagnose.wizard.Wizard`, so the pane, the
terminal wizard and the CLI can never disagree. Database work runs in thread workers, so a busy
gateway writer never freezes the console.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import (
    Button,
    ContentSwitcher,
    Input,
    Label,
    RadioButton,
    RadioSet,
    Select,
    SelectionList,
    Static,
    TextArea,
)
from textual.widgets.selection_list import Selection

from agentdeck.diagnose import log as dlog
from agentdeck.diagnose import rules_file
from agentdeck.diagnose.framework import CATEGORIES, CATEGORY_KEYS
from agentdeck.diagnose.second_opinion import SecondOpinion
from agentdeck.diagnose.wizard import Step, Wizard
from agentdeck.errors import AgentdeckError
from agentdeck.tui.keys import NavTable

_STEP_LABELS: dict[Step, str] = {
    Step.DESCRIBE: "1/7 Describe the error",
    Step.SUGGEST: "2/7 Suggested root cause",
    Step.QUESTIONS: "3/7 Diagnostic questions",
    Step.VERDICT: "3/7 What the answers say",
    Step.ROOT_CAUSE: "4/7 Root cause",
    Step.FIXES: "5/7 Fixes",
    Step.APPLY: "6/7 Apply and verify",
    Step.SAVED: "7/7 Saved",
}
_LOG_ROWS = 50


class _LogTable(NavTable):
    """Recent diagnoses; `s` / `r` record whether the selected fix stuck or the error recurred."""

    BINDINGS = [
        Binding("s", "outcome('stuck')", "Fix stuck"),
        Binding("r", "outcome('recurred')", "Recurred"),
    ]

    class OutcomeRequested(Message):
        def __init__(self, entry_id: int, outcome: str) -> None:
            super().__init__()
            self.entry_id = entry_id
            self.outcome = outcome

    def action_outcome(self, outcome: str) -> None:
        if self.row_count == 0:
            return
        key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key
        if key.value is not None:
            self.post_message(self.OutcomeRequested(int(key.value), outcome))


class DiagnosePane(Widget):
    """Describe -> suggestion -> questions -> root cause -> fixes -> apply & verify -> saved."""

    DEFAULT_CSS = """
    DiagnosePane {
        height: 1fr;
        layout: vertical;
    }
    DiagnosePane #dx-head {
        height: 1;
        padding: 0 1;
        background: $panel;
        color: $text;
        text-style: bold;
    }
    DiagnosePane #dx-body {
        height: 1fr;
        padding: 0 1;
    }
    DiagnosePane ContentSwitcher > Vertical {
        height: auto;
    }
    DiagnosePane TextArea#dx-error {
        height: 6;
    }
    DiagnosePane Horizontal.dx-buttons {
        height: auto;
        margin-top: 1;
    }
    DiagnosePane Horizontal.dx-buttons Button {
        margin-right: 1;
    }
    DiagnosePane .dx-text {
        margin: 1 0 0 0;
    }
    DiagnosePane #dx-question {
        text-style: bold;
        color: $primary;
        margin: 1 0 0 0;
    }
    DiagnosePane #dx-hint, DiagnosePane .dx-muted {
        color: $text-muted;
    }
    DiagnosePane #dx-message {
        height: auto;
        padding: 0 1;
    }
    DiagnosePane #dx-message.-error {
        color: $error;
        text-style: bold;
    }
    DiagnosePane #dx-message.-ok {
        color: $success;
    }
    DiagnosePane #dx-rule-box {
        height: auto;
        border: round $warning;
        padding: 0 1;
        margin-top: 1;
    }
    DiagnosePane #dx-rule-diff {
        color: $text-muted;
    }
    DiagnosePane #dx-rule-box.-hidden {
        display: none;
    }
    DiagnosePane SelectionList {
        height: auto;
        max-height: 12;
    }
    DiagnosePane RadioSet {
        width: 100%;
    }
    DiagnosePane #dx-log-box {
        height: 12;
        border-top: solid $primary;
    }
    DiagnosePane #dx-figures {
        height: 1;
        padding: 0 1;
        color: $text-muted;
    }
    DiagnosePane #dx-log {
        height: 1fr;
    }
    """

    BINDINGS = [
        Binding("ctrl+b", "back", "Back"),
        Binding("ctrl+n", "new", "New diagnosis"),
    ]

    class Saved(Message):
        """A diagnosis reached the log (the console may want to notify or refresh)."""

        def __init__(self, entry_id: int, category: str, recurrence_of: int | None) -> None:
            super().__init__()
            self.entry_id = entry_id
            self.category = category
            self.recurrence_of = recurrence_of

    step: reactive[Step] = reactive(Step.DESCRIBE, init=False)

    def __init__(
        self,
        db_path: Path,
        prefill: str = "",
        *,
        project_dir: Path | None = None,
        source: str = "console",
        second_opinion: Callable[[str], SecondOpinion | None] | None = None,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.db_path = Path(db_path)
        self.project_dir = Path(project_dir) if project_dir is not None else Path.cwd()
        self.wizard = Wizard(prefill, source=source)
        self.second_opinion = second_opinion
        self._second: SecondOpinion | None = None
        self._rule_plan: rules_file.RulePlan | None = None
        self._fix_option_ids: list[str] = []
        self.last_entry: dlog.Entry | None = None

    # -- layout ---------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Static(_STEP_LABELS[Step.DESCRIBE], id="dx-head")
        with VerticalScroll(id="dx-body"):
            with ContentSwitcher(initial="dx-describe", id="dx-steps"):
                with Vertical(id="dx-describe"):
                    yield Label("What did the agent get wrong?")
                    yield TextArea(self.wizard.prefill, id="dx-error", soft_wrap=True,
                                   placeholder="e.g. used hard delete instead of soft delete on users")
                    with Horizontal(classes="dx-buttons"):
                        yield Button("Suggest root cause", id="dx-suggest", variant="primary")
                with Vertical(id="dx-suggest-step"):
                    yield Static(id="dx-suggestion", classes="dx-text")
                    yield Label("Category to examine:", classes="dx-text")
                    with RadioSet(id="dx-category"):
                        for key in CATEGORY_KEYS:
                            yield RadioButton(CATEGORIES[key].title, id=f"dx-cat-{key}")
                    with Horizontal(classes="dx-buttons"):
                        yield Button("Ask its questions", id="dx-examine", variant="primary")
                        yield Button("Skip to root cause", id="dx-skip")
                with Vertical(id="dx-questions"):
                    yield Static(id="dx-question-head", classes="dx-muted")
                    yield Static(id="dx-question")
                    yield Static(id="dx-hint")
                    with Horizontal(classes="dx-buttons"):
                        yield Button("Yes", id="dx-yes", variant="primary")
                        yield Button("No", id="dx-no", variant="primary")
                        yield Button("Not sure", id="dx-unsure")
                with Vertical(id="dx-verdict"):
                    yield Static(id="dx-verdict-text", classes="dx-text")
                    with Horizontal(classes="dx-buttons"):
                        yield Button("Accept", id="dx-accept", variant="success")
                        yield Button("Examine", id="dx-follow", variant="warning")
                with Vertical(id="dx-root"):
                    yield Label("Primary root cause:")
                    yield Select([(CATEGORIES[k].title, k) for k in CATEGORY_KEYS], id="dx-primary", allow_blank=False)
                    yield Label("Also (several fixes may apply):", classes="dx-text")
                    yield SelectionList[str](*[Selection(CATEGORIES[k].title, k) for k in CATEGORY_KEYS], id="dx-also")
                    yield Input(placeholder="The specific cause in a few words (e.g. CLAUDE.md didn't specify hashing)",
                                id="dx-note", classes="dx-text")
                    with Horizontal(classes="dx-buttons"):
                        yield Button("Next: fixes", id="dx-root-next", variant="primary")
                with Vertical(id="dx-fixes"):
                    yield Label("Fixes to apply:")
                    yield SelectionList[str](id="dx-fix-list")
                    yield Input(placeholder="Anything else you changed (optional)", id="dx-custom-fix", classes="dx-text")
                    with Horizontal(classes="dx-buttons"):
                        yield Button("Next: apply & verify", id="dx-fixes-next", variant="primary")
                with Vertical(id="dx-apply"):
                    yield Label("Fix applied:")
                    yield Input(id="dx-fix-text")
                    yield Label("How it will be verified:", classes="dx-text")
                    yield Input(id="dx-verification")
                    with Vertical(id="dx-rule-box", classes="-hidden"):
                        yield Label("Close the loop: add the rule to CLAUDE.md / AGENTS.md")
                        yield Input(placeholder="Rule: what the agent must do", id="dx-rule")
                        yield Input(placeholder="Example of doing it right", id="dx-example")
                        yield Input(placeholder="DO NOT: the anti-pattern it produced", id="dx-do-not")
                        with Horizontal(classes="dx-buttons"):
                            yield Button("Preview change", id="dx-rule-preview")
                            yield Button("Write rule", id="dx-rule-write", variant="warning", disabled=True)
                        yield Static(id="dx-rule-diff")
                    yield Input(placeholder="Result so far (optional, e.g. ✓ stuck: ...)", id="dx-result", classes="dx-text")
                    with Horizontal(classes="dx-buttons"):
                        yield Button("Save to log", id="dx-save", variant="success")
                with Vertical(id="dx-saved"):
                    yield Static(id="dx-saved-text", classes="dx-text")
                    with Horizontal(classes="dx-buttons"):
                        yield Button("New diagnosis", id="dx-new", variant="primary")
            yield Static(id="dx-message")
        with Vertical(id="dx-log-box"):
            yield Static(id="dx-figures")
            yield _LogTable(id="dx-log", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        table = self.query_one(_LogTable)
        table.add_columns("#", "date", "category", "error", "result")
        self.refresh_log()

    # -- public -----------------------------------------------------------------------------------
    def start(self, prefill: str, source: str = "console") -> None:
        """Begin a new diagnosis with this description (e.g. from a failed call or test)."""
        self.wizard.restart(prefill, source=source)
        self._rule_plan = None
        area = self.query_one("#dx-error", TextArea)
        area.text = self.wizard.prefill
        self._message("")
        self._sync()
        area.focus()

    # -- helpers ----------------------------------------------------------------------------------
    def _message(self, text: str, kind: str = "") -> None:
        msg = self.query_one("#dx-message", Static)
        msg.set_classes(f"-{kind}" if kind else "")
        msg.update(text)

    def _run(self, fn: Callable[..., object], *args: object) -> bool:
        """Call a wizard transition; show a user error instead of raising it."""
        try:
            fn(*args)
        except AgentdeckError as e:
            self._message(f"✗ {e}", "error")
            return False
        self._message("")
        self._sync()
        return True

    def _sync(self) -> None:
        """Show the step the wizard is in, filled from its state."""
        wiz = self.wizard
        self.step = wiz.step
        self.query_one("#dx-head", Static).update(f"Diagnose · {_STEP_LABELS[wiz.step]}")
        panel = {
            Step.DESCRIBE: "dx-describe", Step.SUGGEST: "dx-suggest-step", Step.QUESTIONS: "dx-questions",
            Step.VERDICT: "dx-verdict", Step.ROOT_CAUSE: "dx-root", Step.FIXES: "dx-fixes",
            Step.APPLY: "dx-apply", Step.SAVED: "dx-saved",
        }[wiz.step]
        self.query_one(ContentSwitcher).current = panel
        getattr(self, f"_show_{wiz.step.value}")()

    def _show_describe(self) -> None:
        self.query_one("#dx-error", TextArea).focus()

    def _show_suggest(self) -> None:
        sug = self.wizard.suggestion
        assert sug is not None
        self._render_suggestion()
        self.query_one(f"#dx-cat-{sug.category}", RadioButton).value = True
        self.query_one("#dx-examine", Button).focus()

    def _render_suggestion(self) -> None:
        sug = self.wizard.suggestion
        assert sug is not None
        cat = CATEGORIES[sug.category]
        parts: list[str | tuple[str, str]] = [
            ("Suggested: ", "bold"), (cat.title, "bold $primary"), f"  (confidence {sug.confidence:.2f})\n",
        ]
        for reason in sug.why:
            parts.append(f" • {reason}\n")
        parts.append((cat.symptom, "$text-muted"))
        second = self._second
        if second is not None:
            agree = "agrees" if second.category == sug.category else "disagrees"
            parts += ["\n", ("Second opinion ", "bold"), f"({second.model}, {agree}): ",
                      (CATEGORIES[second.category].title, "bold $primary"), f": {second.why}"]
        elif self.second_opinion is not None:
            parts += ["\n", ("Asking the fast tier for a second opinion…", "$text-muted")]
        self.query_one("#dx-suggestion", Static).update(Content.assemble(*parts))

    def _chosen_category(self) -> str:
        pressed = self.query_one("#dx-category", RadioSet).pressed_button
        if pressed is None or pressed.id is None:
            assert self.wizard.suggestion is not None
            return self.wizard.suggestion.category
        return pressed.id.removeprefix("dx-cat-")

    def _show_questions(self) -> None:
        wiz = self.wizard
        q = wiz.current_question
        assert q is not None and wiz.examining is not None
        head = f"{CATEGORIES[wiz.examining].title} · question {wiz.question_index + 1} of {len(wiz.questions)}"
        self.query_one("#dx-question-head", Static).update(head)
        self.query_one("#dx-question", Static).update(Content(q.text))
        self.query_one("#dx-hint", Static).update(Content(q.hint))
        self.query_one("#dx-yes", Button).focus()

    def _show_verdict(self) -> None:
        v = self.wizard.verdict
        assert v is not None
        title = CATEGORIES[v.category].title
        parts: list[str | tuple[str, str]] = []
        if v.confirmed:
            parts += [("✓ Confirmed: ", "bold $success"), (title, "bold"), f" ({v.confirms} for, {v.against} against)\n"]
        elif v.pointer is not None:
            parts += [("? Not confirmed: ", "bold $warning"), f"the answers point to {CATEGORIES[v.pointer].title}\n"]
        else:
            parts += [("? Not enough answers ", "bold $warning"), f"to confirm {title}\n"]
        for reason in v.reasons:
            parts.append((f" • {reason}\n", "$text-muted"))
        self.query_one("#dx-verdict-text", Static).update(Content.assemble(*parts))
        accept = self.query_one("#dx-accept", Button)
        accept.label = f"Accept {title}"
        follow = self.query_one("#dx-follow", Button)
        follow.display = v.pointer is not None
        if v.pointer is not None:
            follow.label = f"Examine {CATEGORIES[v.pointer].title}"
        (accept if v.confirmed or v.pointer is None else follow).focus()

    def _show_root_cause(self) -> None:
        wiz = self.wizard
        assert wiz.primary is not None
        self.query_one("#dx-primary", Select).value = wiz.primary
        also = self.query_one("#dx-also", SelectionList)
        also.deselect_all()
        for k in wiz.also:
            also.select(k)
        self.query_one("#dx-note", Input).value = wiz.root_cause
        self.query_one("#dx-root-next", Button).focus()

    def _show_fixes(self) -> None:
        wiz = self.wizard
        fixes = self.query_one("#dx-fix-list", SelectionList)
        fixes.clear_options()
        options = wiz.fix_options
        self._fix_option_ids = [fx.id for _, fx in options]
        chosen = set(wiz.fix_ids) or ({options[0][1].id} if options else set())
        fixes.add_options([
            Selection(f"{fx.title} ({CATEGORIES[cat].title})", fx.id, fx.id in chosen) for cat, fx in options
        ])
        self.query_one("#dx-fixes-next", Button).focus()

    def _show_apply(self) -> None:
        wiz = self.wizard
        self.query_one("#dx-fix-text", Input).value = wiz.fix_text
        self.query_one("#dx-verification", Input).value = wiz.verification
        box = self.query_one("#dx-rule-box", Vertical)
        box.set_class(not wiz.needs_rule, "-hidden")
        target = rules_file.choose_file(self.project_dir)
        self.query_one("#dx-rule-box Label", Label).update(f"Close the loop: add the rule to {target.name}")
        self.query_one("#dx-rule-diff", Static).update("")
        self.query_one("#dx-rule-write", Button).disabled = True
        self._rule_plan = None
        (self.query_one("#dx-rule", Input) if wiz.needs_rule else self.query_one("#dx-save", Button)).focus()

    def _show_saved(self) -> None:
        e = self.wizard.entry
        assert e is not None
        parts: list[str | tuple[str, str]] = [
            ("✓ Saved ", "bold $success"), (f"#{e.id}", "bold"), f": {e.root_cause_label}\n",
            f"Fix: {e.fix}\n", f"Verify: {e.verification or '-'}\n",
        ]
        if e.recurrence_of is not None:
            parts.append((f"! Looks like #{e.recurrence_of}: that fix is now marked as recurred.\n", "bold $warning"))
        if e.outcome == "pending":
            parts.append(("Later, select it below and press s (stuck) or r (recurred).", "$text-muted"))
        self.query_one("#dx-saved-text", Static).update(Content.assemble(*parts))
        self.query_one("#dx-new", Button).focus()

    # -- events -----------------------------------------------------------------------------------
    @on(Button.Pressed, "#dx-suggest")
    def _on_suggest(self) -> None:
        self._second = None
        if self._run(self.wizard.describe, self.query_one("#dx-error", TextArea).text) and self.second_opinion:
            self._ask_second_opinion(self.wizard.error)

    @work(thread=True, exclusive=True, group="dx-second")
    def _ask_second_opinion(self, error: str) -> None:
        """Off the UI thread: the call is budgeted and time-limited, but still a network call."""
        assert self.second_opinion is not None
        try:
            opinion = self.second_opinion(error)
        except Exception:  # noqa: BLE001 - never required, never fatal
            opinion = None
        self.app.call_from_thread(self._second_opinion_done, error, opinion)

    def _second_opinion_done(self, error: str, opinion: SecondOpinion | None) -> None:
        if self.wizard.error != error or self.wizard.step is not Step.SUGGEST:
            return
        self._second = opinion
        if opinion is None:
            self._message("No second opinion (gateway unreachable, stopped or over budget); the suggestion stands.")
        self._render_suggestion()

    @on(Button.Pressed, "#dx-examine")
    def _on_examine(self) -> None:
        self._run(self.wizard.examine, self._chosen_category())

    @on(Button.Pressed, "#dx-skip")
    def _on_skip(self) -> None:
        self._run(self.wizard.skip_questions, self._chosen_category())

    @on(Button.Pressed, "#dx-yes")
    def _on_yes(self) -> None:
        self._run(self.wizard.answer, True)

    @on(Button.Pressed, "#dx-no")
    def _on_no(self) -> None:
        self._run(self.wizard.answer, False)

    @on(Button.Pressed, "#dx-unsure")
    def _on_unsure(self) -> None:
        self._run(self.wizard.answer, None)

    @on(Button.Pressed, "#dx-accept")
    def _on_accept(self) -> None:
        self._run(self.wizard.accept)

    @on(Button.Pressed, "#dx-follow")
    def _on_follow(self) -> None:
        self._run(self.wizard.follow)

    @on(Button.Pressed, "#dx-root-next")
    def _on_root_next(self) -> None:
        primary = self.query_one("#dx-primary", Select).value
        also = list(self.query_one("#dx-also", SelectionList).selected)
        note = self.query_one("#dx-note", Input).value
        self._run(self.wizard.set_root_cause, str(primary), also, note)

    @on(Button.Pressed, "#dx-fixes-next")
    def _on_fixes_next(self) -> None:
        chosen = [str(v) for v in self.query_one("#dx-fix-list", SelectionList).selected]
        self._run(self.wizard.choose_fixes, chosen, self.query_one("#dx-custom-fix", Input).value)

    @on(Button.Pressed, "#dx-rule-preview")
    def _on_rule_preview(self) -> None:
        rule = rules_file.Rule(
            self.query_one("#dx-rule", Input).value,
            self.query_one("#dx-example", Input).value,
            self.query_one("#dx-do-not", Input).value,
        )
        try:
            self.wizard.set_rule(rule)
            plan = self.wizard.plan_rule(rules_file.choose_file(self.project_dir))
        except AgentdeckError as e:
            self._message(f"✗ {e}", "error")
            return
        self._rule_plan = plan
        diff = self.query_one("#dx-rule-diff", Static)
        if not plan.changed:
            diff.update(f"{plan.path.name} already has this rule.")
            self.query_one("#dx-rule-write", Button).disabled = True
            return
        lines: list[str | tuple[str, str]] = []
        for line in plan.diff.splitlines():
            style = "$success" if line.startswith("+") else ("$error" if line.startswith("-") else "$text-muted")
            lines.append((line + "\n", style))
        diff.update(Content.assemble(*lines))
        self.query_one("#dx-rule-write", Button).disabled = False
        self._message("")

    @on(Button.Pressed, "#dx-rule-write")
    def _on_rule_write(self) -> None:
        if self._rule_plan is None:
            return
        try:
            self.wizard.apply_rule(self._rule_plan)
        except AgentdeckError as e:
            self._message(f"✗ {e}", "error")
            return
        self.query_one("#dx-fix-text", Input).value = self.wizard.fix_text
        self.query_one("#dx-rule-write", Button).disabled = True
        self._message(f"✓ Rule appended to {self._rule_plan.path}", "ok")
        self._rule_plan = None

    @on(Button.Pressed, "#dx-save")
    def _on_save(self) -> None:
        try:
            self.wizard.set_application(
                self.query_one("#dx-fix-text", Input).value, self.query_one("#dx-verification", Input).value
            )
        except AgentdeckError as e:
            self._message(f"✗ {e}", "error")
            return
        self.query_one("#dx-save", Button).disabled = True
        self._save(self.query_one("#dx-result", Input).value)

    @work(thread=True, exclusive=True, group="dx-save")
    def _save(self, result: str) -> None:
        from agentdeck.store import connect

        try:
            conn = connect(self.db_path)
            try:
                entry = self.wizard.save(conn, result=result)
            finally:
                conn.close()
        except AgentdeckError as e:
            self.app.call_from_thread(self._save_failed, str(e))
        except Exception as e:  # noqa: BLE001 - a locked or unwritable database must not kill the console
            self.app.call_from_thread(self._save_failed, f"could not save to {self.db_path}: {e}")
        else:
            self.app.call_from_thread(self._save_done, entry)

    def _save_failed(self, message: str) -> None:
        self.query_one("#dx-save", Button).disabled = False
        self._message(f"✗ {message}", "error")

    def _save_done(self, entry: dlog.Entry) -> None:
        self.query_one("#dx-save", Button).disabled = False
        self.last_entry = entry
        self._message("")
        self._sync()
        self.post_message(self.Saved(entry.id, entry.category, entry.recurrence_of))
        self.refresh_log()

    @on(Button.Pressed, "#dx-new")
    def _on_new(self) -> None:
        self.action_new()

    @on(_LogTable.OutcomeRequested)
    def _on_outcome(self, event: _LogTable.OutcomeRequested) -> None:
        self._set_outcome(event.entry_id, event.outcome)

    # -- actions ----------------------------------------------------------------------------------
    def action_back(self) -> None:
        self._run(self.wizard.back)

    def action_new(self) -> None:
        self.start("", source="console")

    # -- the log below the wizard -----------------------------------------------------------------
    @work(thread=True, exclusive=True, group="dx-log")
    def refresh_log(self) -> None:
        from agentdeck.store import connect

        try:
            conn = connect(self.db_path)
            try:
                items = dlog.entries(conn, limit=_LOG_ROWS, newest_first=True)
                figures = dlog.stats(conn)
            finally:
                conn.close()
        except Exception as e:  # noqa: BLE001
            self.app.call_from_thread(self._message, f"✗ could not read the log: {e}", "error")
            return
        self.app.call_from_thread(self._fill_log, items, figures)

    @work(thread=True, group="dx-log-write")
    def _set_outcome(self, entry_id: int, outcome: str) -> None:
        from agentdeck.store import connect

        try:
            conn = connect(self.db_path)
            try:
                e = dlog.set_outcome(conn, entry_id, outcome)
            finally:
                conn.close()
        except Exception as exc:  # noqa: BLE001
            self.app.call_from_thread(self._message, f"✗ {exc}", "error")
            return
        self.app.call_from_thread(self._message, f"#{e.id}: {e.result_label}", "ok")
        self.app.call_from_thread(self.refresh_log)

    def _fill_log(self, items: list[dlog.Entry], figures: dict[str, object]) -> None:
        table = self.query_one(_LogTable)
        cursor = table.cursor_row
        with self.app.batch_update():
            table.clear()
            for e in items:
                table.add_row(str(e.id), e.date, CATEGORIES[e.category].title, e.error[:80], e.result_label[:40],
                              key=str(e.id))
            if items:
                table.move_cursor(row=min(cursor, len(items) - 1))
        rate = figures.get("recurrence_rate")
        ttd = figures.get("time_to_diagnose") or {}
        median = ttd.get("median_s") if isinstance(ttd, dict) else None
        self.query_one("#dx-figures", Static).update(
            f"{figures.get('total', 0)} diagnoses · recurrence rate "
            f"{'n/a' if rate is None else f'{float(rate):.0%}'} · median time to diagnose "  # type: ignore[arg-type]
            f"{'n/a' if median is None else f'{median} s'} · select a row: s = fix stuck, r = recurred"
        )
