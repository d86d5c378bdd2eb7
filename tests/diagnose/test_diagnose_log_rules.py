"""The log (recurrences, outcomes, figures, export) and the CLAUDE.md / AGENTS.md append."""

from __future__ import annotations

import json
import sqlite3
from datetime import date, datetime
from pathlib import Path

import pytest

from agentdeck.diagnose import log as dlog
from agentdeck.diagnose import rules_file
from agentdeck.diagnose.fingerprint import fingerprint, signature, similarity
from agentdeck.errors import AgentdeckError

DAY = 86400.0
T0 = datetime(2025, 11, 3, 12, 0).timestamp()  # a Monday


def test_fingerprint_ignores_wording_noise_and_similarity_spots_the_same_error() -> None:
    assert fingerprint("LLM stores passwords in plain text") == fingerprint("Claude stored passwords in PLAIN text!")
    assert fingerprint("Error at line 42 in 0xdeadbeef") == fingerprint("error at line 7 in 0xfeedface")
    same = similarity(signature("Uses hard delete instead of soft delete"),
                      signature("The orders endpoint hard-deleted rows instead of a soft delete"))
    assert same.similar
    different = similarity(signature("Wrong API version used"), signature("Code compiles but violates architecture"))
    assert not different.similar and different.shared == 0
    assert not similarity("", "a b").similar


def test_infer_outcome_from_result_text() -> None:
    assert dlog.infer_outcome("✓ All future auth code includes bcrypt hashing") == "stuck"
    assert dlog.infer_outcome("stuck for 3 weeks") == "stuck"
    assert dlog.infer_outcome("✗ came back on the billing service") == "recurred"
    assert dlog.infer_outcome("recurred twice") == "recurred"
    assert dlog.infer_outcome("didn't stick") == "recurred"
    assert dlog.infer_outcome("waiting for next sprint") == "pending"
    assert dlog.infer_outcome("") == "pending"


def test_record_validates_input(conn: sqlite3.Connection) -> None:
    with pytest.raises(AgentdeckError, match="error description is empty"):
        dlog.record(conn, error="  ", category="rules", fix="x")
    with pytest.raises(AgentdeckError, match="unknown category 'vibes'"):
        dlog.record(conn, error="e", category="vibes", fix="x")
    with pytest.raises(AgentdeckError, match="the fix is empty"):
        dlog.record(conn, error="e", category="rules", fix="")
    with pytest.raises(AgentdeckError, match="no diagnosis #7"):
        dlog.get(conn, 7)
    with pytest.raises(AgentdeckError, match="unknown result 'maybe'"):
        dlog.set_outcome(conn, 1, "maybe")
    assert dlog.entries(conn) == []


def test_similar_error_after_a_fix_is_a_recurrence(conn: sqlite3.Connection) -> None:
    a = dlog.record(conn, error="Uses hard delete instead of soft delete on users", category="rules",
                    fix="soft-delete rule in CLAUDE.md", result="✓ stuck", ts=T0)
    other = dlog.record(conn, error="Wrong Stripe API version", category="context", fix="pin version", ts=T0 + DAY)
    b = dlog.record(conn, error="LLM hard-deleted the orders rows instead of soft delete", category="rules",
                    fix="DO NOT list with an example", ts=T0 + 9 * DAY)
    assert a.recurrence_of is None and other.recurrence_of is None
    assert b.recurrence_of == a.id
    a2 = dlog.get(conn, a.id)
    assert a2.outcome == "recurred" and a2.recurred_by == [b.id]  # the earlier fix did not stick after all
    assert a2.result_label.startswith("✗")
    assert dlog.get(conn, other.id).outcome == "pending"
    # A third occurrence links to the latest attempt, not the first.
    c = dlog.record(conn, error="hard delete instead of soft delete again", category="rules", fix="AST-grep rule",
                    ts=T0 + 20 * DAY)
    assert c.recurrence_of == b.id


def test_stats_by_category_over_time_recurrence_rate_and_time_to_diagnose(conn: sqlite3.Connection) -> None:
    dlog.record(conn, error="Wrong API version used", category="context", fix="f", ts=T0, diagnose_seconds=60,
                suggested="context", result="✓")
    dlog.record(conn, error="Code compiles but violates architecture", category="quality_gate", fix="f",
                ts=T0 + DAY, diagnose_seconds=180, suggested="rules")
    dlog.record(conn, error="Passes unit tests but fails integration", category="testing", fix="f",
                ts=T0 + 8 * DAY, diagnose_seconds=120, suggested="testing")
    dlog.record(conn, error="Code compiles but violates the architecture rules", category="quality_gate", fix="g",
                ts=T0 + 15 * DAY)
    s = dlog.stats(conn)
    assert s["total"] == 4
    assert s["by_category"] == {"context": 1, "model": 0, "rules": 0, "testing": 1, "quality_gate": 2}
    assert list(s["over_time"]) == ["2025-W45", "2025-W46", "2025-W47"]
    assert s["over_time"]["2025-W45"]["context"] == 1 and s["over_time"]["2025-W45"]["quality_gate"] == 1
    assert s["outcomes"] == {"pending": 2, "stuck": 1, "recurred": 1}
    assert s["recurrence_rate"] == 0.5 and s["recurrences_logged"] == 1
    assert s["time_to_diagnose"]["count"] == 3 and s["time_to_diagnose"]["median_s"] == 120
    assert s["time_to_diagnose"]["by_category"]["quality_gate"]["median_s"] == 180
    assert s["suggester_agreement"] == round(2 / 3, 3)
    assert list(dlog.stats(conn, "month")["over_time"]) == ["2025-11"]
    with pytest.raises(AgentdeckError, match="unknown period"):
        dlog.stats(conn, "year")  # type: ignore[arg-type]


def test_export_markdown_is_the_seed_log_format(conn: sqlite3.Connection) -> None:
    dlog.record(conn, error="LLM stores passwords in plain text", category="rules",
                root_cause="CLAUDE.md didn't specify hashing", fix="Added security rule to CLAUDE.md",
                verification="Re-ran auth feature generation, confirmed password hashing",
                result="✓ All future auth code includes bcrypt hashing", ts=datetime(2025, 11, 15, 9).timestamp())
    dlog.record(conn, error="Pipe | in the error", category="testing", also=["quality_gate"], fix="strong tests",
                ts=datetime(2025, 11, 16, 9).timestamp())
    md = dlog.export_markdown(dlog.entries(conn), dlog.stats(conn))
    lines = md.splitlines()
    assert lines[0] == "# Error Diagnostic Log"
    assert "| Date | Error | Root Cause | Fix Applied | Verification | Result |" in lines
    assert ("| 2025-11-15 | LLM stores passwords in plain text | Rules Problem (CLAUDE.md didn't specify hashing) | "
            "Added security rule to CLAUDE.md | Re-ran auth feature generation, confirmed password hashing | "
            "✓ All future auth code includes bcrypt hashing |") in lines
    assert "| 2025-11-16 | Pipe \\| in the error | Testing Problem; also Quality Gate Problem | strong tests | - | Pending |" in lines
    for field in ("**Date**: 2025-11-15", "**Error**: LLM stores passwords in plain text",
                  "**Root Cause**: Rules Problem (CLAUDE.md didn't specify hashing)",
                  "**Fix Applied**: Added security rule to CLAUDE.md",
                  "**Verification**: Re-ran auth feature generation, confirmed password hashing",
                  "**Result**: ✓ All future auth code includes bcrypt hashing"):
        assert field in lines
    assert "- Recurrence rate: 0% (0 recurred, 1 stuck, 1 pending)" in lines
    data = dlog.export_json(dlog.entries(conn), dlog.stats(conn))
    json.dumps(data)
    assert data["entries"][0]["root_cause_label"] == "Rules Problem (CLAUDE.md didn't specify hashing)"
    assert data["stats"]["total"] == 2


def test_rule_append_creates_file_then_extends_the_rules_section(tmp_path: Path) -> None:
    target = rules_file.choose_file(tmp_path)
    assert target.name == "CLAUDE.md"
    rule = rules_file.Rule("Delete rows by setting deleted_at", "user.deleted_at = now()", "DELETE FROM users")
    plan = rules_file.plan_append(target, rule, entry_id=4, today=date(2025, 11, 15))
    assert plan.changed and plan.diff.startswith("--- a/CLAUDE.md\n+++ b/CLAUDE.md\n")
    rules_file.apply(plan)
    assert target.read_text() == (
        "## Rules\n\n- Delete rows by setting deleted_at\n  - Example: user.deleted_at = now()\n"
        "  - DO NOT: DELETE FROM users\n  <!-- from agentdeck diagnose #4, 2025-11-15 -->\n")
    # Same rule again: nothing to do.
    assert not rules_file.plan_append(target, rule).changed
    # An existing file with a Rules section followed by another section: the rule lands inside the section.
    target.write_text("# Project\n\n## Rules\n\n- Times are UTC\n\n## Layout\n\nsrc/ holds the code\n")
    plan = rules_file.plan_append(target, rules_file.Rule("Money is integer cents", "", "float prices"),
                                  today=date(2025, 11, 15))
    assert "@@" in plan.diff and "+- Money is integer cents" in plan.diff and "+  - DO NOT: float prices" in plan.diff
    rules_file.apply(plan)
    text = target.read_text()
    assert text.index("Money is integer cents") < text.index("## Layout")
    assert text.index("Times are UTC") < text.index("Money is integer cents")
    assert text.endswith("src/ holds the code\n")


def test_rule_append_prefers_agents_md_when_only_it_exists_and_refuses_stale_writes(tmp_path: Path) -> None:
    (tmp_path / "AGENTS.md").write_text("# Agents\nBe careful.\n")
    target = rules_file.choose_file(tmp_path)
    assert target.name == "AGENTS.md"
    plan = rules_file.plan_append(target, rules_file.Rule("Verify webhook signatures"))
    assert plan.after.startswith("# Agents\nBe careful.\n\n## Rules\n\n- Verify webhook signatures\n")
    target.write_text("# Agents\nBe careful.\nEdited meanwhile.\n")
    with pytest.raises(AgentdeckError, match="changed since the diff was shown"):
        rules_file.apply(plan)
    assert "Verify webhook" not in target.read_text()
    with pytest.raises(AgentdeckError, match="CLAUDE.md or AGENTS.md"):
        rules_file.choose_file(tmp_path, "README.md")


def test_prefill_from_a_failed_call_and_a_failed_test() -> None:
    from agentdeck.diagnose.prefill import from_failed_request, from_flaky_test

    row = {"id": "r-17", "model_requested": "auto", "model": "claude-haiku-4-5", "tier": "fast", "status": 500,
           "error": "upstream returned\n  invalid JSON"}
    assert from_failed_request(row) == ("Call r-17 to claude-haiku-4-5 (asked for auto), fast tier failed with "
                                        "status 500: upstream returned invalid JSON")
    assert from_failed_request({"id": "x", "model": "m", "status": 404}) == "Call x to m failed with status 404"
    test = {"nodeid": "tests/test_x.py::test_y", "runs": 50, "failures": 7, "verdict": "flaky",
            "evidence": ["TimeoutError after 2.0 s in 7 of 7 failures"]}
    assert from_flaky_test(test) == ("Test tests/test_x.py::test_y is flaky (7 of 50 runs failed): "
                                     "TimeoutError after 2.0 s in 7 of 7 failures")
    assert from_flaky_test({"nodeid": "t", "verdict": "broken"}) == "Test t fails every run"
