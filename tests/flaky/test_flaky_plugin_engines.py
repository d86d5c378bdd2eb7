"""The plugin on its own (record, seed) and the runner's engines: hangs, crashes, fork vs subprocess."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

from flaky_support import FAST, FIXTURES, fast_pytest

from agentdeck.flaky.runner import FlakyOptions, run_flaky


def _failing_seed() -> int:
    """A seed whose first random() draw fails test_dice (>= 0.7)."""
    return next(s for s in range(1000) if random.Random(s).random() >= 0.7)


def test_plugin_records_every_run_and_replays_a_seed(tmp_path: Path) -> None:
    out = tmp_path / "runs.jsonl"
    seed = _failing_seed()
    env = dict(os.environ, **FAST)
    for _ in range(2):
        p = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-p",
                "agentdeck.flaky.plugin",
                f"--agentdeck-record={out}",
                f"--agentdeck-seed={seed}",
                "-q",
            ],
            cwd=FIXTURES / "mini",
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert p.returncode == 1, p.stdout + p.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 6
    for run in (rows[:3], rows[3:]):
        assert [r["nodeid"] for r in run] == [
            "test_mini.py::test_ok",
            "test_mini.py::test_broken",
            "test_mini.py::test_dice",
        ]
        assert [r["position"] for r in run] == [0, 1, 2]
        ok, broken, dice = run
        assert ok["outcome"] == "passed" and ok["exc_type"] is None and ok["duration"] >= 0
        assert broken["outcome"] == "failed" and broken["phase"] == "call" and broken["exc_type"] == "AssertionError"
        assert "always broken" in broken["message"] and broken["location"] == "test_mini.py:11"
        # The same seed makes the same draw: the randomness failure replays every time.
        assert dice["outcome"] == "failed" and dice["seed"] == seed and "rolled too high" in dice["message"]


def test_a_hanging_test_is_killed_reported_and_the_rest_still_runs() -> None:
    with fast_pytest():
        report = run_flaky(
            FlakyOptions(project_dir=FIXTURES / "hang", runs=2, workers=2, timeout=1.5, shuffles=0, seed=1)
        )
    tests = {t.nodeid: t for t in report.tests}
    hang = tests["test_hang.py::test_waits_forever"]
    assert hang.verdict == "broken" and hang.timeouts == hang.runs == 3 and hang.root_cause is None
    assert hang.evidence == ["hung in all 3 runs: killed after 1.5 s each time"]
    assert "hangs every time" in hang.recommendation
    after = tests["test_hang.py::test_runs_after_the_hang"]
    assert after.verdict == "stable" and after.runs == 3  # continued in a fresh process after each hang
    assert {r.experiment for r in report.records if r.idx == 1} == {"continued", "isolated"}
    assert all(r.outcome == "timeout" and r.message and "hung" in r.message for r in report.records if r.idx == 0)


def test_a_crashing_test_is_reported_as_crashed(tmp_path: Path) -> None:
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "test_crash.py").write_text(
        "import os\n\ndef test_dies():\n    os._exit(7)\n\ndef test_after():\n    assert True\n"
    )
    with fast_pytest():
        report = run_flaky(FlakyOptions(project_dir=tmp_path, runs=2, workers=2, shuffles=0, seed=1, timeout=20))
    dies, after = report.tests
    assert dies.verdict == "broken" and all(r.outcome == "crashed" for r in report.records if r.idx == 0)
    assert "exited with code 7" in (report.records[0].message or "") or any(
        "exited with code 7" in (r.message or "") for r in report.records
    )
    assert after.verdict == "stable"


def test_subprocess_engine_gives_the_same_answers(tmp_path: Path) -> None:
    """A fresh interpreter per run: slower (start-up and collection every time), same verdicts."""
    opts = dict(project_dir=FIXTURES / "mini", runs=3, workers=2, seed=5, diagnose=False)
    with fast_pytest():
        fork = run_flaky(FlakyOptions(engine="fork", **opts))  # type: ignore[arg-type]
        sub = run_flaky(FlakyOptions(engine="subprocess", **opts))  # type: ignore[arg-type]
    assert (fork.engine, sub.engine) == ("fork", "subprocess")
    # Same master seed: same per-run seeds, so even the randomness test fails in the same runs.
    assert [(t.nodeid, t.verdict, t.failures) for t in fork.tests] == [
        (t.nodeid, t.verdict, t.failures) for t in sub.tests
    ]
    assert {t.nodeid: t.verdict for t in sub.tests}["test_mini.py::test_broken"] == "broken"


def test_forked_runs_are_independent_like_fresh_processes(tmp_path: Path) -> None:
    """Module state, the random generator and tmp_path are fresh in every forked run."""
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "test_fresh.py").write_text(
        "import random\n\nSEEN = []\nDRAWS = []\n\n"
        "def test_module_state_is_fresh(tmp_path):\n"
        "    SEEN.append(1)\n"
        "    assert SEEN == [1]\n"
        "    marker = tmp_path.parent / 'seen'\n"
        "    assert not marker.exists()\n"
        "    marker.write_text('x')\n\n"
        "def test_draw():\n"
        "    print(random.random())\n"
    )
    with fast_pytest():
        report = run_flaky(FlakyOptions(project_dir=tmp_path, runs=8, workers=2, seed=3, diagnose=False))
    assert [t.verdict for t in report.tests] == ["stable", "stable"]
    seeds = {r.seed for r in report.records if r.idx == 1}
    assert len(seeds) == 8  # every run draws from its own seed (varied seeds), recorded for replay
