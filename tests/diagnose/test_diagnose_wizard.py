"""The wizard state machine, walked through every path, against a real SQLite log."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from agentdeck.diagnose import log as dlog
from agentdeck.diagnose.rules_file import Rule
from agentdeck.diagnose.wizard import Step, Wizard, WizardError
from agentdeck.errors import AgentdeckError


class FakeClock:
    """Time to diagnose is measured with the clock the wizard is given."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def walk_to_verdict(wiz: Wizard, error: str, answers: list[bool | None], category: str | None = None) -> None:
    wiz.describe(error)
    wiz.examine(category)
    for a in answers:
        wiz.answer(a)


def test_happy_path_confirm_then_fix_then_save(conn: sqlite3.Connection) -> None:
    clock = FakeClock()
    wiz = Wizard(source="wizard", clock=clock)
    assert wiz.step is Step.DESCRIBE
    sug = wiz.describe("Uses hard delete instead of soft delete")
    assert wiz.step is Step.SUGGEST and sug.category == "rules"
    q = wiz.examine()
    assert wiz.step is Step.QUESTIONS and wiz.examining == "rules" and wiz.current_question == q
    wiz.answer(False)  # no explicit rule
    wiz.answer(False)  # no example / DO NOT list
    v = wiz.answer(True)  # had the code in context, chose differently
    assert wiz.step is Step.VERDICT
    assert v == wiz.verdict and v.confirmed and v.confirms == 3 and v.against == 0
    assert wiz.accept() == "rules" and wiz.step is Step.ROOT_CAUSE
    wiz.set_root_cause(note="CLAUDE.md didn't say deletes must be soft")
    assert wiz.step is Step.FIXES
    assert [fx.id for _, fx in wiz.fix_options] == ["rules-explicit", "rules-edge-cases"]
    wiz.choose_fixes(["rules-explicit"])
    assert wiz.step is Step.APPLY and wiz.needs_rule
    assert wiz.fix_text == "Add an explicit rule with an example and a DO NOT list"
    assert "Re-run" in wiz.verification
    wiz.set_application(verification="Regenerated the delete endpoint; it sets deleted_at")
    clock.t += 42.5
    entry = wiz.save(conn)
    assert wiz.step is Step.SAVED and wiz.entry == entry
    assert entry.category == "rules" and entry.root_cause == "CLAUDE.md didn't say deletes must be soft"
    assert entry.diagnose_seconds == pytest.approx(42.5)
    assert entry.suggested == "rules" and entry.source == "wizard" and entry.outcome == "pending"
    assert entry.fix_ids == ["rules-explicit"]
    assert dlog.get(conn, entry.id).verification == "Regenerated the delete endpoint; it sets deleted_at"
    with pytest.raises(WizardError, match="already saved"):
        wiz.back()
    with pytest.raises(WizardError, match="not available at the saved step"):
        wiz.describe("again")


def test_answers_point_elsewhere_follow_and_accept_the_new_category(conn: sqlite3.Connection) -> None:
    wiz = Wizard()
    # Suggested context, but the example WAS in context and CLAUDE.md DID name the pattern -> rules.
    walk_to_verdict(wiz, "Used moment.js although the project uses date-fns", [True, True, True])
    assert wiz.suggestion is not None and wiz.suggestion.category == "context"
    v = wiz.verdict
    assert v is not None and not v.confirmed and v.pointer == "rules" and v.against == 2
    assert any("points to Rules" in r for r in v.reasons)
    q = wiz.follow()
    assert wiz.examining == "rules" and q.text.startswith("Is the expected behaviour written")
    assert wiz.visited == ("context", "rules")
    for a in (False, False, True):
        wiz.answer(a)
    assert wiz.verdict is not None and wiz.verdict.confirmed
    wiz.accept()
    wiz.set_root_cause(also=["quality_gate", "rules"], note="date library not stated")
    assert wiz.also == ("quality_gate",)  # the primary is never also a secondary
    cats = {c for c, _ in wiz.fix_options}
    assert cats == {"rules", "quality_gate"}
    wiz.choose_fixes(["rules-edge-cases", "gate-lint"], custom="pinned date-fns in package.json")
    assert wiz.fix_text == "Document the edge cases with examples; Add a lint rule; pinned date-fns in package.json"
    assert not wiz.needs_rule
    e = wiz.save(conn, result="✓ stuck")
    assert e.category == "rules" and e.also == ["quality_gate"] and e.suggested == "context"
    assert e.outcome == "stuck"


def test_unsure_answers_confirm_nothing_and_point_nowhere() -> None:
    wiz = Wizard()
    walk_to_verdict(wiz, "Route handler queries the database directly", [None, None, None])
    v = wiz.verdict
    assert v is not None and v.unsure == 3 and v.pointer is None and not v.confirmed
    with pytest.raises(WizardError, match="point nowhere else"):
        wiz.follow()
    assert wiz.accept("testing") == "testing"  # the engineer may overrule


def test_confirmed_with_a_dissenting_answer_keeps_the_pointer_as_also_consider() -> None:
    wiz = Wizard()
    walk_to_verdict(wiz, "Code compiles but violates architecture", [True, False, True])
    v = wiz.verdict
    assert v is not None and v.confirmed and v.confirms == 2 and v.against == 1 and v.pointer == "rules"


def test_examining_a_category_other_than_the_suggestion_and_skipping_questions() -> None:
    wiz = Wizard()
    wiz.describe("Output was truncated and the last functions are missing")
    wiz.examine("quality gate")
    assert wiz.examining == "quality_gate"
    wiz.back()
    assert wiz.step is Step.SUGGEST
    wiz.skip_questions()
    assert wiz.step is Step.ROOT_CAUSE and wiz.primary == "model"
    wiz.back()
    wiz.skip_questions("testing")
    assert wiz.primary == "testing"


def test_back_undoes_each_step_in_order() -> None:
    wiz = Wizard()
    walk_to_verdict(wiz, "Wrong API version used", [False, False, True])
    wiz.accept()
    wiz.set_root_cause()
    wiz.choose_fixes(["context-hierarchical"])
    seen = [wiz.step]
    while True:
        try:
            seen.append(wiz.back())
        except WizardError as e:
            assert "nothing to go back to" in str(e)
            break
    assert seen == [Step.APPLY, Step.FIXES, Step.ROOT_CAUSE, Step.VERDICT, Step.QUESTIONS, Step.QUESTIONS,
                    Step.QUESTIONS, Step.SUGGEST, Step.DESCRIBE]
    assert wiz.error == "" and wiz.answers_for("context") == ()


def test_bad_input_gets_clear_messages() -> None:
    wiz = Wizard()
    with pytest.raises(WizardError, match="describe the error first"):
        wiz.describe("   ")
    with pytest.raises(WizardError, match="not available at the describe step"):
        wiz.answer(True)
    wiz.describe("Stored passwords in plain text")
    with pytest.raises(AgentdeckError, match="unknown category 'vibes'"):
        wiz.examine("vibes")
    wiz.skip_questions()
    with pytest.raises(AgentdeckError, match="unknown category 'nope'"):
        wiz.set_root_cause(also=["nope"])
    wiz.set_root_cause()
    with pytest.raises(WizardError, match="unknown fix 'gate-lint' for this root cause"):
        wiz.choose_fixes(["gate-lint"])
    with pytest.raises(WizardError, match="choose at least one fix"):
        wiz.choose_fixes([], custom="   ")
    wiz.choose_fixes([], custom="hashed with bcrypt")
    assert wiz.fix_text == "hashed with bcrypt" and wiz.verification == ""
    with pytest.raises(WizardError, match="say what fix was applied"):
        wiz.set_application(fix_text=" ")
    with pytest.raises(WizardError, match="write the rule first"):
        wiz.plan_rule(Path("CLAUDE.md"))
    with pytest.raises(AgentdeckError, match="the rule is empty"):
        wiz.set_rule(Rule(" "))
    with pytest.raises(WizardError, match="unknown source"):
        Wizard(source="pigeon")


def test_rules_fix_appends_to_claude_md_and_says_so_in_the_log(tmp_path: Path, conn: sqlite3.Connection) -> None:
    wiz = Wizard()
    wiz.describe("Ignores business rule from docs")
    wiz.skip_questions()
    wiz.set_root_cause()
    wiz.choose_fixes(["rules-explicit"])
    wiz.set_rule(Rule("Orders over $10k go to manual review", "if total > 10_000: queue_review(order)",
                      "auto-approve large orders"))
    target = tmp_path / "CLAUDE.md"
    plan = wiz.plan_rule(target)
    assert not target.exists(), "planning writes nothing"
    assert "+- Orders over $10k go to manual review" in plan.diff and "+  - DO NOT: auto-approve" in plan.diff
    wiz.apply_rule(plan)
    assert "Orders over $10k go to manual review" in target.read_text()
    assert wiz.rule_written == str(target)
    assert wiz.fix_text.endswith("rule appended to CLAUDE.md")
    assert wiz.save(conn).fix.endswith("rule appended to CLAUDE.md")


def test_restart_from_a_failed_call_prefills_and_resets_the_clock(conn: sqlite3.Connection) -> None:
    clock = FakeClock()
    wiz = Wizard(clock=clock)
    wiz.describe("something")
    clock.t += 500
    wiz.restart("POST /v1/messages -> 500 upstream error", source="request")
    assert wiz.step is Step.DESCRIBE and wiz.prefill.startswith("POST") and wiz.source == "request"
    wiz.describe(wiz.prefill)
    wiz.skip_questions("model")
    wiz.set_root_cause()
    wiz.choose_fixes(["model-tier"])
    clock.t += 3
    e = wiz.save(conn)
    assert e.diagnose_seconds == pytest.approx(3) and e.source == "request"
    with pytest.raises(WizardError, match="unknown source"):
        wiz.restart("x", source="pigeon")
