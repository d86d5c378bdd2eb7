"""Helpers shared by the flaky tests (a unique module name: every test dir has a conftest.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from agentdeck.flaky.analysis import TestVerdict
from agentdeck.flaky.runner import FlakyReport
from agentdeck.flaky.scheduler import RunRecord
from agentdeck.flaky.stats import wilson

FIXTURES = Path(__file__).resolve().parent.parent / "flaky_fixtures"
# The fixture projects use no third-party pytest plugins; not auto-loading the ones installed
# here (textual snapshots, benchmark, ...) saves ~3 s of start-up per pytest process.
FAST = {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}


@contextmanager
def fast_pytest() -> Iterator[None]:
    old = {k: os.environ.get(k) for k in FAST}
    os.environ.update(FAST)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


PROJECT = "/proj"
NAMES = ["t.py::test_race", "t.py::test_ok"]


def session(outcomes: dict[int, list[str]], started: float) -> FlakyReport:
    """A session as the runner would report it: same-order runs with these outcomes per test."""
    records, tests = [], []
    for idx, outs in outcomes.items():
        for run, o in enumerate(outs):
            records.append(
                RunRecord(
                    idx=idx,
                    experiment="same-order",
                    job=run,
                    copy=0,
                    run=run,
                    pos=idx,
                    outcome=o,
                    message="boom" if o == "failed" else None,
                    ts=started + run,
                )
            )
        f, n = sum(o == "failed" for o in outs), len(outs)
        verdict = "stable" if f == 0 else "broken" if f == n else "flaky"
        tests.append(
            TestVerdict(
                NAMES[idx],
                n,
                f,
                f / n,
                wilson(f, n),
                verdict,
                "timing" if verdict == "flaky" else None,
                ["e"],
                "r",
                (f, n),
            )
        )
    # a perturbed run never counts as a clean (or failing) run after a fix
    records.append(
        RunRecord(idx=0, experiment="contention", job=99, copy=0, run=0, pos=0, outcome="failed", ts=started - 1)
    )
    return FlakyReport(
        runs=max(len(v) for v in outcomes.values()),
        tests=tests,
        project=PROJECT,
        pytest_args=["-q"],
        engine="fork",
        workers=2,
        seed=1,
        started_at=started,
        duration_s=1.0,
        phases={},
        warnings=[],
        records=records,
        nodeids=NAMES,
    )
