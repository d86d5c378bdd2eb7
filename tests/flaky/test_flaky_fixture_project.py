"""The runner on the fixture project: every flaky test found, none of the stable ones flagged, each cause named.

One real diagnosis (same-order, shuffled and isolated runs, bisection, perturbations) in
forked pytest processes; each test below checks one part of its answer.
"""

from __future__ import annotations

import pytest

from agentdeck.flaky.analysis import CAUSES
from agentdeck.flaky.runner import FlakyReport

EXPECTED = {
    "test_timing.py::test_cache_refresh_finishes_in_time": ("flaky", "timing"),
    "test_dependency.py::test_inventory_lookup": ("flaky", "dependency"),
    "test_resource.py::test_metrics_exporter_binds_its_port": ("flaky", "resource"),
    "test_randomness.py::test_backoff_stays_under_five_seconds": ("flaky", "randomness"),
    "test_order_a_config.py::test_config_is_ready": ("flaky", "state"),
    "test_order_b_registry.py::test_registry_starts_empty": ("flaky", "state"),
    "test_broken.py::test_parse_port_accepts_empty_string": ("broken", None),
}
POLLUTER = "test_order_c_plugins.py::test_register_plugin"
SETTER = "test_order_a_config.py::test_load_config"


def by_id(report: FlakyReport) -> dict[str, object]:
    return {t.nodeid: t for t in report.tests}


@pytest.mark.parametrize("nodeid", sorted(EXPECTED))
def test_each_flaky_or_broken_test_gets_the_known_answer(project_report: FlakyReport, nodeid: str) -> None:
    t = by_id(project_report)[nodeid]
    verdict, cause = EXPECTED[nodeid]
    assert (t.verdict, t.root_cause) == (verdict, cause), "\n".join([f"{t.verdict} {t.root_cause}", *t.evidence])


def test_no_stable_test_is_flagged(project_report: FlakyReport) -> None:
    others = [t for t in project_report.tests if t.nodeid not in EXPECTED]
    assert len(others) == 11
    flagged = [(t.nodeid, t.verdict, t.evidence) for t in others if t.verdict != "stable" or t.root_cause is not None]
    assert not flagged
    skipped = by_id(project_report)["test_stable.py::test_not_built_yet"]
    assert skipped.runs == 0 and "skipped" in skipped.evidence[0]
    xfail = by_id(project_report)["test_stable.py::test_known_bug"]
    assert xfail.runs > 0 and xfail.failures == 0


def test_order_dependence_names_the_polluter_and_the_state_setter(project_report: FlakyReport) -> None:
    tests = by_id(project_report)
    victim = tests["test_order_b_registry.py::test_registry_starts_empty"]
    brittle = tests["test_order_a_config.py::test_config_is_ready"]
    assert victim.culprit == POLLUTER and brittle.culprit == SETTER
    # Same-order reruns never see either (the research's point): only isolation and shuffles do.
    assert victim.same_order[0] == 0 and brittle.same_order[0] == 0
    assert victim.breakdown["shuffled"][0] > 0 and brittle.breakdown["alone"][0] == brittle.breakdown["alone"][1]
    assert any("victim of a polluter" in e and POLLUTER in e for e in victim.evidence)
    assert any("shared_state.REGISTRY" in e and "CsvExporter" in e for e in victim.evidence)
    assert any("brittle" in e and SETTER in e for e in brittle.evidence)
    assert "Reset the state the polluter leaves" in victim.recommendation and POLLUTER in victim.recommendation
    assert SETTER in brittle.recommendation and "shared_state.CONFIG" in brittle.recommendation


def test_causes_rest_on_the_experiment_that_separates_them(project_report: FlakyReport) -> None:
    tests = by_id(project_report)
    timing = tests["test_timing.py::test_cache_refresh_finishes_in_time"]
    assert any(e.startswith("cause: timing, because with a slowed clock") for e in timing.evidence), timing.evidence
    dependency = tests["test_dependency.py::test_inventory_lookup"]
    assert any(
        "sandbox" in e and "significant" in e and "refused: connect 127.0.0.1:" in e for e in dependency.evidence
    )
    resource = tests["test_resource.py::test_metrics_exporter_binds_its_port"]
    assert any("4 copies started at the same moment" in e and "significant" in e for e in resource.evidence)
    assert any("Address already in use" in e for e in resource.evidence)
    randomness = tests["test_randomness.py::test_backoff_stays_under_five_seconds"]
    assert any("replaying the random seed" in e and "8/8" in e and "significant" in e for e in randomness.evidence)
    # Every flaky test reports its rate with a confidence interval.
    for t in project_report.tests:
        if t.verdict == "flaky":
            assert 0 < t.failures < t.runs and t.ci95[0] < t.failure_rate < t.ci95[1]
            assert "95% CI" in t.evidence[0]


def test_recommendations_are_concrete(project_report: FlakyReport) -> None:
    tests = by_id(project_report)
    timing = tests["test_timing.py::test_cache_refresh_finishes_in_time"].recommendation
    assert (
        timing.startswith("Wait on an event instead of sleeping at test_timing.py:") and "time.sleep(0.004)" in timing
    )
    dependency = tests["test_dependency.py::test_inventory_lookup"].recommendation
    assert (
        dependency.startswith("Mock the named call")
        and "127.0.0.1:" in dependency
        and "create_connection" in dependency
    )
    resource = tests["test_resource.py::test_metrics_exporter_binds_its_port"].recommendation
    assert resource.startswith("Use an ephemeral port")
    randomness = tests["test_randomness.py::test_backoff_stays_under_five_seconds"].recommendation
    assert randomness.startswith("Seed or widen the assertion") and "--agentdeck-seed" in randomness
    broken = tests["test_broken.py::test_parse_port_accepts_empty_string"]
    assert broken.recommendation.startswith("Not flaky") and "ValueError" in broken.recommendation


def test_json_document_follows_the_contract(project_report: FlakyReport) -> None:
    doc = project_report.to_json()
    assert doc["runs"] == 24
    for t in doc["tests"]:
        assert t["verdict"] in {"stable", "flaky", "broken"}
        assert (t["root_cause"] in CAUSES) if t["verdict"] == "flaky" else t["root_cause"] is None
        assert isinstance(t["evidence"], list) and isinstance(t["recommendation"], str)
        if t["runs"]:
            assert abs(t["failure_rate"] - t["failures"] / t["runs"]) < 1e-3
    assert doc["summary"] == {"tests": 18, "stable": 11, "flaky": 6, "broken": 1}


def test_every_run_is_recorded_with_position_and_failure_details(project_report: FlakyReport) -> None:
    names = project_report.nodeids
    same = [r for r in project_report.records if r.experiment == "same-order"]
    assert {r.run for r in same} == set(range(24))
    first_run = sorted((r for r in same if r.run == 0), key=lambda r: r.pos)
    assert [names[r.idx] for r in first_run] == names and [r.pos for r in first_run] == list(range(len(names)))
    broken = [r for r in same if names[r.idx].startswith("test_broken.py")]
    assert all(
        r.outcome == "failed"
        and r.exc == "ValueError"
        and r.phase == "call"
        and r.location == "test_broken.py:5"
        and "invalid literal" in (r.message or "")
        and r.duration > 0
        for r in broken
    )
    shuffled = {r.order_seed for r in project_report.records if r.experiment == "shuffled"}
    assert len(shuffled) == 10 and None not in shuffled
