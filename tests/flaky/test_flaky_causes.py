"""The runner on the `causes` project: the cases issue 18 found misnamed, each with its known answer.

Timing read as randomness (an asyncio deadline, a pytest-timeout budget, a main-thread
deadline, all fed by a random draw), a connection reset with no experiment to confirm it,
a polluter of a test that also fails alone, a shared directory inside the project, and
timezone dependence. One real diagnosis in forked pytest processes; each test checks one
part of its answer.
"""

from __future__ import annotations

import pytest

from agentdeck.flaky.analysis import CAUSES, EVIDENCE_KINDS
from agentdeck.flaky.runner import FlakyReport

EXPECTED = {  # nodeid: (verdict, cause, evidence_kind)
    "test_async_deadline.py::test_quote_arrives_before_the_deadline": ("flaky", "timing", "experiment"),
    "test_budget.py::test_checksum_of_a_random_batch": ("flaky", "timing", "experiment"),
    "test_deadline.py::test_report_renders_within_its_deadline": ("flaky", "timing", "experiment"),
    "test_econnreset.py::test_payment_is_acknowledged": ("flaky", "dependency", "signature"),
    "test_partial_b_pricing.py::test_price_splits_three_ways": ("flaky", "state", "experiment"),
    "test_shared_dir.py::test_export_to_bucket": ("flaky", "resource", "experiment"),
    "test_tz.py::test_invoice_is_dated_on_the_order_day": ("flaky", "environment", "experiment"),
    "test_tz.py::test_local_noon_is_new_york_noon": ("broken", None, None),
}
POLLUTER = "test_partial_a_setup.py::test_strict_rounding_mode"


def by_id(report: FlakyReport) -> dict[str, object]:
    return {t.nodeid: t for t in report.tests}


@pytest.mark.parametrize("nodeid", sorted(EXPECTED))
def test_each_case_gets_the_known_answer(causes_report: FlakyReport, nodeid: str) -> None:
    t = by_id(causes_report)[nodeid]
    assert (t.verdict, t.root_cause, t.evidence_kind) == EXPECTED[nodeid], "\n".join(
        [f"{t.verdict} {t.root_cause} {t.evidence_kind}", *t.evidence]
    )


def test_no_stable_test_is_flagged(causes_report: FlakyReport) -> None:
    others = [t for t in causes_report.tests if t.nodeid not in EXPECTED]
    assert len(others) == 5 and POLLUTER in {t.nodeid for t in others}
    assert all(t.verdict == "stable" and t.root_cause is None for t in others), [
        (t.nodeid, t.verdict, t.evidence) for t in others
    ]


def test_a_seed_that_only_decides_the_duration_is_timing_not_randomness(causes_report: FlakyReport) -> None:
    tests = by_id(causes_report)
    for nodeid in (
        "test_async_deadline.py::test_quote_arrives_before_the_deadline",
        "test_budget.py::test_checksum_of_a_random_batch",
        "test_deadline.py::test_report_renders_within_its_deadline",
    ):
        t = tests[nodeid]
        # The seed replay alone would have said randomness; the shrunk-time replay of that seed overturns it.
        assert any("replaying the random seed" in e and "8/8" in e and "overturned" in e for e in t.evidence), t.evidence
        assert any(e.startswith("cause: timing, because replaying the failing seed with time shrunk") for e in t.evidence)
        assert "Seed or widen" not in t.recommendation and t.confirmed is True and t.confidence > 0.9
    budget = tests["test_budget.py::test_checksum_of_a_random_batch"]
    assert budget.recommendation.startswith("Size the budget for the slow inputs") and "pytest-timeout" in budget.recommendation
    deadline = tests["test_deadline.py::test_report_renders_within_its_deadline"]
    assert deadline.recommendation.startswith("Do not race a fixed deadline")


def test_a_signature_names_the_cause_when_no_experiment_fires(causes_report: FlakyReport) -> None:
    t = by_id(causes_report)["test_econnreset.py::test_payment_is_acknowledged"]
    doc = t.to_json()
    assert doc["root_cause"] == "dependency" and doc["confirmed"] is False and doc["evidence_kind"] == "signature"
    assert 0 < doc["confidence"] < 0.9  # an unconfirmed signature is never near-certain
    assert any("ConnectionResetError [ECONNRESET]" in e for e in t.evidence)
    assert "unconfirmed" in t.recommendation


def test_a_shared_directory_inside_the_project_is_a_resource_conflict(causes_report: FlakyReport) -> None:
    t = by_id(causes_report)["test_shared_dir.py::test_export_to_bucket"]
    assert any(e.startswith("cause: resource, because with 4 copies") for e in t.evidence), t.evidence
    sandbox = next(e for e in t.evidence if e.startswith("in a sandbox"))
    assert "refused" not in sandbox and "significant" not in sandbox  # writes inside the project are allowed
    assert any("FileExistsError [EEXIST]" in e for e in t.evidence)


def test_the_polluter_of_a_test_that_also_fails_alone_is_found_by_rate(causes_report: FlakyReport) -> None:
    t = by_id(causes_report)["test_partial_b_pricing.py::test_price_splits_three_ways"]
    assert t.culprit == POLLUTER, t.evidence
    assert 0 < t.breakdown["alone"][0] < t.breakdown["alone"][1]  # it does fail alone, sometimes
    assert any("partially order-dependent" in e and POLLUTER in e for e in t.evidence)


def test_timezone_dependence_is_environment(causes_report: FlakyReport) -> None:
    tests = by_id(causes_report)
    flaky = tests["test_tz.py::test_invoice_is_dated_on_the_order_day"]
    assert any("under TZ=America/New_York" in e and "passed 2/2" in e for e in flaky.evidence), flaky.evidence
    assert "timezone" in flaky.recommendation
    broken = tests["test_tz.py::test_local_noon_is_new_york_noon"]
    assert any("passes under TZ=America/New_York" in e for e in broken.evidence), broken.evidence
    assert broken.recommendation.startswith("Not flaky, but environment-dependent")


def test_json_gains_confidence_and_evidence_kind(causes_report: FlakyReport) -> None:
    doc = causes_report.to_json()
    for t in doc["tests"]:
        assert {"nodeid", "runs", "failures", "failure_rate", "verdict", "root_cause", "evidence", "recommendation"} <= set(t)
        if t["verdict"] == "flaky" and t["root_cause"] == "unknown":
            assert t["evidence_kind"] is None and t["confidence"] == 0.0
        elif t["verdict"] == "flaky":
            assert t["root_cause"] in CAUSES and t["evidence_kind"] in EVIDENCE_KINDS
            assert 0.0 <= t["confidence"] <= 1.0 and isinstance(t["confirmed"], bool)
        else:
            assert t["root_cause"] is None and t["confidence"] is None and t["evidence_kind"] is None
    assert "environment" in CAUSES
