"""The diagnosis wizard as a state machine with no UI in it.

Why a state machine: the console pane, the plain-terminal wizard and the tests drive the same
object, so "describe -> suggestion -> questions -> root cause -> fixes -> apply -> saved" behaves
identically everywhere, each step validates its own input, and every path (confirm, redirect to
another category, skip the questions, go back) is testable without a screen.

Steps:
    DESCRIBE    the error, typed or prefilled from a failed call / failed test
    SUGGEST     the offline suggestion and its reasons; pick a category to examine (or skip)
    QUESTIONS   that category's questions, answered yes / no / not sure
    VERDICT     confirmed, or pointed at another category (follow it, or keep this one)
    ROOT_CAUSE  one primary cause, optionally others (several fixes may apply), and a note
    FIXES       choose the concrete fixes (and/or write one)
    APPLY       what was applied and how it will be verified; for rules, the CLAUDE.md append
    SAVED       in the log; the result (stuck / recurred) is recorded later
"""

from __future__ import annotations

import copy
import sqlite3
import time
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Callable

from agentdeck.diagnose import log as dlog
from agentdeck.diagnose import rules_file
from agentdeck.diagnose.framework import CATEGORIES, CATEGORY_KEYS, CategoryKey, Fix, Question, fixes_for, parse_category
from agentdeck.diagnose.suggest import Suggestion, suggest
from agentdeck.errors import AgentdeckError


class WizardError(AgentdeckError):
    """An input the current step cannot accept, or an action that is not available in this step."""


class Step(StrEnum):
    DESCRIBE = "describe"
    SUGGEST = "suggest"
    QUESTIONS = "questions"
    VERDICT = "verdict"
    ROOT_CAUSE = "root_cause"
    FIXES = "fixes"
    APPLY = "apply"
    SAVED = "saved"


@dataclass(frozen=True)
class Verdict:
    """What the answers say about the category just examined."""

    category: CategoryKey
    confirmed: bool
    confirms: int
    against: int
    unsure: int
    pointer: CategoryKey | None
    reasons: tuple[str, ...]


@dataclass
class _State:
    step: Step = Step.DESCRIBE
    error: str = ""
    suggestion: Suggestion | None = None
    examining: CategoryKey | None = None
    question_index: int = 0
    answers: dict[str, list[bool | None]] = field(default_factory=dict)
    visited: list[CategoryKey] = field(default_factory=list)
    primary: CategoryKey | None = None
    also: list[CategoryKey] = field(default_factory=list)
    root_cause: str = ""
    fix_ids: list[str] = field(default_factory=list)
    custom_fix: str = ""
    fix_text: str = ""
    verification: str = ""
    rule: rules_file.Rule | None = None
    rule_written: str | None = None


def _fmt_answer(value: bool | None) -> str:
    return "not sure" if value is None else ("yes" if value else "no")


class Wizard:
    """One diagnosis, from the first description to the saved log entry."""

    def __init__(
        self,
        prefill: str = "",
        *,
        source: str = "wizard",
        clock: Callable[[], float] = time.monotonic,
        suggester: Callable[[str], Suggestion] = suggest,
    ) -> None:
        if source not in dlog.SOURCES:
            raise WizardError(f"unknown source {source!r}")
        self.prefill = prefill.strip()
        self.source = source
        self._clock = clock
        self._suggest = suggester
        self.started_at = clock()
        self.entry: dlog.Entry | None = None
        self._s = _State()
        self._history: list[_State] = []

    # -- reading the state ------------------------------------------------------------------
    @property
    def step(self) -> Step:
        return self._s.step

    @property
    def error(self) -> str:
        return self._s.error

    @property
    def suggestion(self) -> Suggestion | None:
        return self._s.suggestion

    @property
    def examining(self) -> CategoryKey | None:
        return self._s.examining

    @property
    def visited(self) -> tuple[CategoryKey, ...]:
        return tuple(self._s.visited)

    @property
    def primary(self) -> CategoryKey | None:
        return self._s.primary

    @property
    def also(self) -> tuple[CategoryKey, ...]:
        return tuple(self._s.also)

    @property
    def root_cause(self) -> str:
        return self._s.root_cause

    @property
    def fix_ids(self) -> tuple[str, ...]:
        return tuple(self._s.fix_ids)

    @property
    def fix_text(self) -> str:
        return self._s.fix_text

    @property
    def verification(self) -> str:
        return self._s.verification

    @property
    def rule(self) -> rules_file.Rule | None:
        return self._s.rule

    @property
    def rule_written(self) -> str | None:
        return self._s.rule_written

    @property
    def question_index(self) -> int:
        return self._s.question_index

    @property
    def questions(self) -> tuple[Question, ...]:
        if self._s.examining is None:
            return ()
        return CATEGORIES[self._s.examining].questions

    @property
    def current_question(self) -> Question | None:
        if self._s.step is not Step.QUESTIONS:
            return None
        return self.questions[self._s.question_index]

    def answers_for(self, category: CategoryKey) -> tuple[bool | None, ...]:
        return tuple(self._s.answers.get(category, ()))

    @property
    def verdict(self) -> Verdict | None:
        cat = self._s.examining
        if cat is None or self._s.step not in (Step.VERDICT,):
            return None
        return self._judge(cat)

    @property
    def fix_options(self) -> list[tuple[CategoryKey, Fix]]:
        if self._s.primary is None:
            return []
        return fixes_for([self._s.primary, *self._s.also])

    @property
    def needs_rule(self) -> bool:
        """A rules fix was chosen: offer to write the rule into CLAUDE.md / AGENTS.md."""
        return any(fx.appends_rule for _, fx in self.fix_options if fx.id in self._s.fix_ids)

    @property
    def elapsed(self) -> float:
        return max(0.0, self._clock() - self.started_at)

    # -- transitions -----------------------------------------------------------------------
    def _expect(self, *steps: Step) -> None:
        if self._s.step not in steps:
            allowed = " or ".join(s.value for s in steps)
            raise WizardError(f"not available at the {self._s.step.value} step (only at {allowed})")

    def _push(self) -> None:
        self._history.append(copy.deepcopy(self._s))

    def back(self) -> Step:
        """Undo the last transition (not available once saved)."""
        if self._s.step is Step.SAVED:
            raise WizardError("already saved; start a new diagnosis instead")
        if not self._history:
            raise WizardError("nothing to go back to")
        self._s = self._history.pop()
        return self._s.step

    def restart(self, prefill: str = "", source: str | None = None) -> None:
        """Start over (a new error), e.g. when the console opens the wizard from another failed call."""
        if source is not None:
            if source not in dlog.SOURCES:
                raise WizardError(f"unknown source {source!r}")
            self.source = source
        self.prefill = prefill.strip()
        self.started_at = self._clock()
        self.entry = None
        self._s = _State()
        self._history = []

    def describe(self, text: str) -> Suggestion:
        """DESCRIBE -> SUGGEST: the error in words; returns the offline suggestion."""
        self._expect(Step.DESCRIBE)
        text = text.strip()
        if not text:
            raise WizardError("describe the error first: what did the agent get wrong?")
        self._push()
        self._s.error = text[: dlog.MAX_ERROR_CHARS]
        self._s.suggestion = self._suggest(self._s.error)
        self._s.step = Step.SUGGEST
        return self._s.suggestion

    def examine(self, category: str | None = None) -> Question:
        """SUGGEST or VERDICT -> QUESTIONS: ask the questions of the suggested (or a chosen) category."""
        self._expect(Step.SUGGEST, Step.VERDICT)
        if category is None:
            if self._s.step is Step.VERDICT:
                pointer = self._judge(self._s.examining).pointer if self._s.examining else None
                if pointer is None:
                    raise WizardError("the answers point nowhere else; accept this category or pick one")
                key: CategoryKey = pointer
            else:
                assert self._s.suggestion is not None
                key = self._s.suggestion.category
        else:
            key = parse_category(category)
        self._push()
        self._s.examining = key
        self._s.question_index = 0
        self._s.answers[key] = []
        if key not in self._s.visited:
            self._s.visited.append(key)
        self._s.step = Step.QUESTIONS
        return CATEGORIES[key].questions[0]

    def follow(self) -> Question:
        """VERDICT -> QUESTIONS of the category the answers point to."""
        self._expect(Step.VERDICT)
        return self.examine(None)

    def answer(self, value: bool | None) -> Question | Verdict:
        """QUESTIONS: yes (True), no (False) or not sure (None); the last answer moves to VERDICT."""
        self._expect(Step.QUESTIONS)
        if value is not None and not isinstance(value, bool):
            raise WizardError("answer yes, no or not sure")
        assert self._s.examining is not None
        self._push()
        self._s.answers[self._s.examining].append(value)
        self._s.question_index += 1
        if self._s.question_index < len(self.questions):
            return self.questions[self._s.question_index]
        self._s.step = Step.VERDICT
        return self._judge(self._s.examining)

    def _judge(self, cat: CategoryKey) -> Verdict:
        answers = self._s.answers.get(cat, [])
        confirms = against = unsure = 0
        pointers: dict[CategoryKey, int] = {}
        reasons: list[str] = []
        for q, a in zip(CATEGORIES[cat].questions, answers):
            if a is None:
                unsure += 1
            elif a == q.confirm_on:
                confirms += 1
                reasons.append(f"{_fmt_answer(a)} to \u201c{q.text}\u201d confirms {CATEGORIES[cat].title}")
            else:
                against += 1
                pointers[q.otherwise] = pointers.get(q.otherwise, 0) + 1
                reasons.append(f"{_fmt_answer(a)} to \u201c{q.text}\u201d points to {CATEGORIES[q.otherwise].title}"
                               + (f" ({q.hint})" if q.hint else ""))
        # Ties keep the category being examined: moving on needs more evidence than staying.
        # Only "not sure" answers confirm nothing and point nowhere: the engineer picks.
        confirmed = confirms > 0 and confirms >= against
        # Even a confirmed category keeps its pointer: it is the "also consider" for secondary causes.
        pointer = max(pointers, key=lambda k: (pointers[k], -CATEGORY_KEYS.index(k))) if pointers else None
        return Verdict(cat, confirmed, confirms, against, unsure, pointer, tuple(reasons))

    def skip_questions(self, category: str | None = None) -> None:
        """SUGGEST -> ROOT_CAUSE: the engineer already knows the cause (suggested or chosen)."""
        self._expect(Step.SUGGEST)
        assert self._s.suggestion is not None
        key = parse_category(category) if category is not None else self._s.suggestion.category
        self._push()
        self._s.primary = key
        self._s.step = Step.ROOT_CAUSE

    def accept(self, category: str | None = None) -> CategoryKey:
        """VERDICT -> ROOT_CAUSE: take the examined category (or another one) as the primary cause."""
        self._expect(Step.VERDICT)
        assert self._s.examining is not None
        key = parse_category(category) if category is not None else self._s.examining
        self._push()
        self._s.primary = key
        self._s.step = Step.ROOT_CAUSE
        return key

    def set_root_cause(self, primary: str | None = None, also: list[str] | tuple[str, ...] = (), note: str = "") -> None:
        """ROOT_CAUSE -> FIXES: one primary cause, optionally more, and the cause in words."""
        self._expect(Step.ROOT_CAUSE)
        key = parse_category(primary) if primary is not None else self._s.primary
        if key is None:
            raise WizardError("choose the primary root cause")
        also_keys = [k for k in dict.fromkeys(parse_category(a) for a in also) if k != key]
        self._push()
        self._s.primary = key
        self._s.also = also_keys
        self._s.root_cause = " ".join(note.split())
        self._s.fix_ids = [fid for fid in self._s.fix_ids if fid in {fx.id for _, fx in self.fix_options}]
        self._s.step = Step.FIXES

    def choose_fixes(self, fix_ids: list[str] | tuple[str, ...], custom: str = "") -> None:
        """FIXES -> APPLY: at least one framework fix or a written one."""
        self._expect(Step.FIXES)
        options = {fx.id: fx for _, fx in self.fix_options}
        unknown = [f for f in fix_ids if f not in options]
        if unknown:
            raise WizardError(f"unknown fix {unknown[0]!r} for this root cause; choose from: {', '.join(options)}")
        custom = " ".join(custom.split())
        if not fix_ids and not custom:
            raise WizardError("choose at least one fix, or write the fix you applied")
        self._push()
        chosen = [options[f] for f in dict.fromkeys(fix_ids)]
        self._s.fix_ids = [fx.id for fx in chosen]
        self._s.custom_fix = custom
        self._s.fix_text = "; ".join([fx.title for fx in chosen] + ([custom] if custom else []))
        self._s.verification = chosen[0].verification if chosen else ""
        self._s.step = Step.APPLY

    def set_application(self, fix_text: str | None = None, verification: str | None = None) -> None:
        """APPLY: edit what was applied and how it will be verified (prefilled from the chosen fixes)."""
        self._expect(Step.APPLY)
        if fix_text is not None:
            fix_text = " ".join(fix_text.split())
            if not fix_text:
                raise WizardError("say what fix was applied")
            self._s.fix_text = fix_text
        if verification is not None:
            self._s.verification = " ".join(verification.split())

    def set_rule(self, rule: rules_file.Rule | None) -> None:
        """APPLY: the rule (with its example and DO NOT line) to write into CLAUDE.md / AGENTS.md."""
        self._expect(Step.APPLY)
        if rule is not None:
            rule.lines()  # validates: a rule must not be empty
        self._s.rule = rule

    def plan_rule(self, path: Path) -> rules_file.RulePlan:
        """APPLY: the diff that appending the rule would make, to show before writing anything."""
        self._expect(Step.APPLY)
        if self._s.rule is None:
            raise WizardError("write the rule first (rule, example, DO NOT line)")
        return rules_file.plan_append(path, self._s.rule)

    def apply_rule(self, plan: rules_file.RulePlan) -> None:
        """APPLY: write the previewed change; the log's fix text then says where the rule went."""
        self._expect(Step.APPLY)
        rules_file.apply(plan)
        self._s.rule_written = str(plan.path)
        note = f"rule appended to {plan.path.name}"
        if plan.changed and note not in self._s.fix_text:
            self._s.fix_text = f"{self._s.fix_text}; {note}" if self._s.fix_text else note

    def save(self, conn: sqlite3.Connection, result: str = "") -> dlog.Entry:
        """APPLY -> SAVED: one log entry, with the time taken to diagnose and the suggester's guess."""
        self._expect(Step.APPLY)
        assert self._s.primary is not None
        if not self._s.fix_text.strip():
            raise WizardError("say what fix was applied")
        sug = self._s.suggestion
        entry = dlog.record(
            conn,
            error=self._s.error,
            category=self._s.primary,
            also=self._s.also,
            root_cause=self._s.root_cause,
            fix=self._s.fix_text,
            fix_ids=self._s.fix_ids,
            verification=self._s.verification,
            result=result,
            diagnose_seconds=round(self.elapsed, 3),
            suggested=sug.category if sug else None,
            suggested_confidence=sug.confidence if sug else None,
            source=self.source,
        )
        self._history.clear()
        self._s.step = Step.SAVED
        self.entry = entry
        return entry
