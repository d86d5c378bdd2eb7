"""The plain-terminal wizard: rich prompts over the same state machine the console pane drives.

Why prompts and not a full-screen app: `agentdeck diagnose` is for the moment right after an agent
got something wrong, often over SSH or inside the agent's own terminal; a question-and-answer flow
works there, in a pipe, and in a recorded transcript.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Callable

from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.prompt import Confirm, Prompt
from rich.syntax import Syntax
from rich.table import Table

from agentdeck.diagnose import log as dlog
from agentdeck.diagnose import rules_file
from agentdeck.diagnose.framework import CATEGORIES, CATEGORY_KEYS, parse_category
from agentdeck.diagnose.second_opinion import SecondOpinion
from agentdeck.diagnose.suggest import Suggestion
from agentdeck.diagnose.wizard import Step, Wizard, WizardError
from agentdeck.errors import AgentdeckError


class InputEnded(AgentdeckError):
    """Standard input closed before the wizard finished (nothing was saved)."""


def render_suggestion(console: Console, sug: Suggestion, second: SecondOpinion | None = None) -> None:
    cat = CATEGORIES[sug.category]
    console.print(f"[bold]Suggested root cause:[/] [bold cyan]{cat.title}[/] (confidence {sug.confidence:.2f})")
    for reason in sug.why:
        console.print(f"  • {escape(reason)}")
    console.print(f"  [dim]{escape(cat.symptom)}[/]")
    if second is not None:
        agree = "agrees" if second.category == sug.category else "disagrees"
        console.print(f"[bold]Second opinion[/] ({escape(second.model)}, {agree}): "
                      f"[bold]{CATEGORIES[second.category].title}[/]: {escape(second.why)}")


class TerminalWizard:
    """Walks one Wizard through its steps with rich prompts; returns the saved entry."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        *,
        console: Console | None = None,
        project_dir: Path = Path("."),
        second_opinion: Callable[[str], SecondOpinion | None] | None = None,
    ) -> None:
        self.conn = conn
        self.console = console or Console(highlight=False)
        self.project_dir = project_dir
        self.second_opinion = second_opinion

    # -- prompts that turn EOF into a clear error -------------------------------------------------
    def _ask(self, prompt: str, **kw: object) -> str:
        if kw.get("default") == "":
            kw["show_default"] = False
        try:
            return Prompt.ask(prompt, console=self.console, **kw)  # type: ignore[arg-type]
        except EOFError:
            raise InputEnded("input ended before the diagnosis was saved; nothing was recorded") from None

    def _confirm(self, prompt: str, default: bool) -> bool:
        try:
            return Confirm.ask(prompt, console=self.console, default=default)
        except EOFError:
            raise InputEnded("input ended before the diagnosis was saved; nothing was recorded") from None

    def _err(self, e: AgentdeckError) -> None:
        self.console.print(f"[bold red]✗[/] {escape(str(e))}")

    # -- the walk ----------------------------------------------------------------------------------
    def run(self, prefill: str = "", source: str = "wizard") -> dlog.Entry:
        wiz = Wizard(prefill, source=source)
        c = self.console
        c.print(Panel.fit(
            "Which of five root causes was it? [bold]context[/], [bold]model[/], [bold]rules[/], "
            "[bold]testing[/], [bold]quality gate[/].\nFix the cause, not the symptom; the log shows whether it stuck.",
            title="agentdeck diagnose",
        ))
        while wiz.step is not Step.SAVED:
            try:
                self._step(wiz)
            except WizardError as e:
                self._err(e)
            except dlog.LogError as e:
                self._err(e)
        assert wiz.entry is not None
        return wiz.entry

    def _step(self, wiz: Wizard) -> None:
        c = self.console
        if wiz.step is Step.DESCRIBE:
            kw: dict[str, object] = {"default": wiz.prefill} if wiz.prefill else {}
            text = self._ask("[bold]What did the agent get wrong?[/]", **kw)
            sug = wiz.describe(text)
            second = self.second_opinion(wiz.error) if self.second_opinion is not None else None
            render_suggestion(c, sug, second)
        elif wiz.step is Step.SUGGEST:
            assert wiz.suggestion is not None
            key = self._ask("Category to examine", choices=list(CATEGORY_KEYS), default=wiz.suggestion.category)
            if self._confirm(f"Answer the {CATEGORIES[parse_category(key)].title} questions to confirm it?", True):
                wiz.examine(key)
            else:
                wiz.skip_questions(key)
        elif wiz.step is Step.QUESTIONS:
            q = wiz.current_question
            assert q is not None and wiz.examining is not None
            n = wiz.question_index + 1
            c.print(f"\n[bold]{CATEGORIES[wiz.examining].title} {n}/{len(wiz.questions)}[/] {escape(q.text)}")
            a = self._ask("  yes / no / not sure", choices=["y", "n", "?"], default="?")
            wiz.answer({"y": True, "n": False}.get(a))
        elif wiz.step is Step.VERDICT:
            v = wiz.verdict
            assert v is not None
            title = CATEGORIES[v.category].title
            for r in v.reasons:
                c.print(f"  [dim]{escape(r)}[/]")
            if v.confirmed:
                c.print(f"[green]✓[/] The answers confirm [bold]{title}[/] ({v.confirms} for, {v.against} against).")
                if self._confirm(f"Take {title} as the root cause?", True):
                    wiz.accept()
                else:
                    wiz.accept(self._ask("Root cause", choices=list(CATEGORY_KEYS), default=v.category))
            elif v.pointer is not None:
                other = CATEGORIES[v.pointer].title
                c.print(f"[yellow]?[/] The answers point away from {title}, towards [bold]{other}[/].")
                if self._confirm(f"Examine {other} instead?", v.pointer not in wiz.visited):
                    wiz.follow()
                else:
                    wiz.accept(self._ask("Root cause", choices=list(CATEGORY_KEYS), default=v.category))
            else:
                c.print(f"[yellow]?[/] Not enough answers to confirm {title}.")
                wiz.accept(self._ask("Root cause", choices=list(CATEGORY_KEYS), default=v.category))
        elif wiz.step is Step.ROOT_CAUSE:
            primary = self._ask("Primary root cause", choices=list(CATEGORY_KEYS), default=wiz.primary)
            also_raw = self._ask("Other root causes that also need a fix (comma separated, enter for none)", default="")
            also = [a.strip() for a in also_raw.split(",") if a.strip()]
            note = self._ask("The specific cause in a few words (e.g. CLAUDE.md didn't specify hashing)", default="")
            wiz.set_root_cause(primary, also, note)
        elif wiz.step is Step.FIXES:
            table = Table("#", "fix", "for", "what to do", show_lines=False, box=None)
            options = wiz.fix_options
            for i, (cat, fx) in enumerate(options, 1):
                table.add_row(str(i), fx.title, CATEGORIES[cat].title, fx.detail)
            c.print(table)
            raw = self._ask("Fixes to apply (numbers, comma separated)", default="1")
            picked: list[str] = []
            for part in raw.replace(" ", ",").split(","):
                if not part:
                    continue
                if not part.isdigit() or not 1 <= int(part) <= len(options):
                    raise WizardError(f"{part!r} is not a fix number between 1 and {len(options)}")
                picked.append(options[int(part) - 1][1].id)
            custom = self._ask("Anything else you changed (enter for none)", default="")
            wiz.choose_fixes(picked, custom)
        elif wiz.step is Step.APPLY:
            fix = self._ask("Fix applied", default=wiz.fix_text)
            verification = self._ask("How it will be verified", default=wiz.verification or "")
            wiz.set_application(fix, verification)
            if wiz.needs_rule and wiz.rule_written is None:
                self._offer_rule(wiz)
            result = self._ask("Result so far (e.g. '✓ stuck: ...'; enter to record it later)", default="")
            entry = wiz.save(self.conn, result=result)
            self._saved(entry)

    def _offer_rule(self, wiz: Wizard) -> None:
        target = rules_file.choose_file(self.project_dir)
        if not self._confirm(f"Append the rule to {target}?", True):
            return
        rule = rules_file.Rule(
            self._ask("Rule (what the agent must do)"),
            self._ask("Example of doing it right", default=""),
            self._ask("DO NOT (the anti-pattern it produced)", default=""),
        )
        wiz.set_rule(rule)
        plan = wiz.plan_rule(target)
        if not plan.changed:
            self.console.print(f"{target.name} already has this rule.")
            return
        self.console.print(Syntax(plan.diff, "diff", theme="ansi_dark", background_color="default"))
        if self._confirm(f"Write this change to {target}?", True):
            wiz.apply_rule(plan)
            self.console.print(f"[green]✓[/] Rule appended to {target}.")

    def _saved(self, entry: dlog.Entry) -> None:
        c = self.console
        c.print(f"\n[green]✓[/] Saved diagnosis [bold]#{entry.id}[/]: {escape(entry.root_cause_label)}")
        if entry.recurrence_of is not None:
            prev = dlog.get(self.conn, entry.recurrence_of)
            c.print(f"[yellow]![/] This looks like #{prev.id} from {prev.date} ({escape(prev.error[:80])}); "
                    f"that fix is now marked as recurred.")
        if entry.outcome == "pending":
            c.print(f"Later: [bold]agentdeck diagnose result {entry.id} stuck[/] (or recurred).")
