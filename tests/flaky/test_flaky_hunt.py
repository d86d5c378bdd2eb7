"""Hunt mode on the `latent` project: tests that never fail in plain runs, found under the stress that breaks them."""

from __future__ import annotations

from pathlib import Path

from flaky_support import FIXTURES, fast_pytest

from agentdeck.flaky.runner import FlakyOptions, FlakyReport, run_flaky

DB_TEST = "test_orders_db.py::test_reserves_a_connection_slot"
MEMORY_TEST = "test_memory.py::test_loads_the_whole_export_at_once"


def by_id(report: FlakyReport) -> dict[str, object]:
    return {t.nodeid: t for t in report.tests}


def test_latent_tests_are_reported_with_the_experiment_that_broke_them(latent_report: FlakyReport) -> None:
    tests = by_id(latent_report)
    db, memory = tests[DB_TEST], tests[MEMORY_TEST]
    for t in (db, memory):
        assert t.failures == 0 and t.runs > 0, t.evidence  # never failed a plain run
        assert t.verdict == "flaky" and t.latent and t.evidence_kind == "experiment", t.evidence
    assert db.root_cause == "resource" and db.stress["experiment"] == "parallel", db.evidence
    assert memory.root_cause == "resource" and memory.stress["experiment"] == "limits", memory.evidence
    assert any("connection slots are in use" in e for e in db.evidence) and "4 copies" in db.recommendation
    assert any("MemoryError" in e for e in memory.evidence)
    for name in ("test_upper", "test_join", "test_sorted"):
        assert tests[f"test_fine.py::{name}"].verdict == "stable"


def test_hunt_section_of_the_json(latent_report: FlakyReport) -> None:
    doc = latent_report.to_json()
    hunt = doc["hunt"]
    assert hunt["rounds"] >= 1 and set(hunt["experiments"]) >= {"parallel", "contention", "limits", "slownet"}
    assert any(k.startswith("env:TZ=") for k in hunt["experiments"])
    latent = {x["nodeid"]: x["experiment"] for x in hunt["latent"]}
    assert latent == {DB_TEST: "parallel", MEMORY_TEST: "limits"}
    assert doc["summary"]["flaky"] == 2 and doc["summary"]["broken"] == 0


def test_an_exhausted_budget_stops_the_hunt_before_it_starts(tmp_path: Path) -> None:
    with fast_pytest():
        report = run_flaky(
            FlakyOptions(project_dir=FIXTURES / "mini", runs=2, shuffles=0, alone_runs=2, workers=2, seed=1,
                         hunt=True, budget_s=0.001)
        )
    assert report.hunt is not None and report.hunt.rounds == 0 and report.hunt.stopped_by_budget
    assert not any(r.experiment.startswith("hunt") for r in report.records)
