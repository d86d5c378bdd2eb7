"""`agentdeck flaky` from the outside: JSON, Markdown, --max-rate exit codes, history and --compare after a fix."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from flaky_support import FAST

FIXED_MINI = """
def test_ok() -> None:
    assert "flaky".upper() == "FLAKY"


def test_broken() -> None:
    assert 1 + 1 == 2


def test_dice() -> None:
    assert 0.5 < 0.7
"""


def cli(args: list[str], cwd: Path, config: Path, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, AGENTDECK_CONFIG=str(config), **FAST)
    return subprocess.run(
        [sys.executable, "-m", "agentdeck", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def test_run_json_report_history_and_compare_after_a_fix(tmp_path: Path, fixture_dir: Path, config_file: Path) -> None:
    proj = tmp_path / "proj"
    shutil.copytree(fixture_dir / "mini", proj)
    out, md = tmp_path / "flaky.json", tmp_path / "flaky.md"
    before = cli(
        [
            "flaky",
            "--runs",
            "6",
            "--shuffles",
            "2",
            "--alone-runs",
            "6",
            "--seed",
            "5",
            "--workers",
            "2",
            "--json",
            str(out),
            "--report",
            str(md),
            "--max-rate",
            "0.5",
        ],
        proj,
        config_file,
    )
    assert before.returncode == 1, before.stderr  # test_broken fails 100% > 0.5
    assert "Traceback" not in before.stderr
    assert "fail more often than --max-rate 0.5" in before.stderr and "test_broken" in before.stderr
    assert "agentdeck flaky: same-order, shuffled and isolated runs..." in before.stderr  # progress (no tty: lines)
    doc = json.loads(out.read_text())
    assert doc["runs"] == 6
    tests = {t["nodeid"]: t for t in doc["tests"]}
    assert set(tests) == {"test_mini.py::test_ok", "test_mini.py::test_broken", "test_mini.py::test_dice"}
    assert (tests["test_mini.py::test_ok"]["verdict"], tests["test_mini.py::test_ok"]["root_cause"]) == ("stable", None)
    assert tests["test_mini.py::test_broken"]["verdict"] == "broken"
    assert tests["test_mini.py::test_broken"]["failures"] == tests["test_mini.py::test_broken"]["runs"]
    dice = tests["test_mini.py::test_dice"]
    assert dice["verdict"] == "flaky" and dice["root_cause"] == "randomness" and 0 < dice["failure_rate"] < 1
    report = md.read_text()
    assert report.startswith("# Flaky-test report: proj")
    assert (
        "## Flaky tests" in report and "`test_mini.py::test_dice`" in report and "**Root cause**: randomness" in report
    )
    assert "## Broken tests" in report and "## Failure rates" in report and "█" in report
    assert "test_mini.py::test_dice" in before.stdout and "recorded as session 1" in before.stdout

    # Straight after: the newest session found them failing, so nothing can be called fixed yet.
    cmp0 = cli(["flaky", "--compare", "--json", "-"], proj, config_file)
    assert cmp0.returncode == 0, cmp0.stderr
    statuses = {t["nodeid"]: t["status"] for t in json.loads(cmp0.stdout)["tests"]}
    assert statuses == {"test_mini.py::test_dice": "still failing", "test_mini.py::test_broken": "still failing"}

    (proj / "test_mini.py").write_text(FIXED_MINI)
    after = cli(
        ["flaky", "--runs", "12", "--shuffles", "2", "--workers", "2", "--max-rate", "0", "--json", str(out)],
        proj,
        config_file,
    )
    assert after.returncode == 0, after.stderr
    assert all(t["verdict"] == "stable" for t in json.loads(out.read_text())["tests"])

    cmp1 = cli(["flaky", "--compare", "--json", "-"], proj, config_file)
    doc = json.loads(cmp1.stdout)
    rows = {t["nodeid"]: t for t in doc["tests"]}
    dice_row = rows["test_mini.py::test_dice"]
    # n = ln(0.05)/ln(1-p_before) clean runs are needed; 12 same-order + 2 shuffled + 1 alone = 15 ran clean.
    assert dice_row["after"] == {"runs": 15, "failures": 0, "failure_rate": 0.0}
    assert dice_row["clean_runs_needed"] <= 15 and dice_row["status"] == "fixed"
    assert (
        rows["test_mini.py::test_broken"]["status"] == "fixed"
        and rows["test_mini.py::test_broken"]["clean_runs_needed"] == 1
    )
    assert [s["flaky"] for s in doc["sessions"]] == [1, 0] and [s["broken"] for s in doc["sessions"]] == [1, 0]
    text = cli(["flaky", "--compare"], proj, config_file)
    assert "Flaky tests over time" in text.stdout and "fixed" in text.stdout
    one = cli(["flaky", "--compare", "--test", "test_mini.py::test_dice", "--json", "-"], proj, config_file)
    sessions = json.loads(one.stdout)["sessions"]
    assert [(s["verdict"], s["root_cause"]) for s in sessions] == [("flaky", "randomness"), ("stable", None)]


def test_a_single_test_selected_with_pytest_args_and_no_diagnosis(
    tmp_path: Path, fixture_dir: Path, config_file: Path
) -> None:
    out = tmp_path / "one.json"
    p = cli(
        [
            "flaky",
            "--runs",
            "4",
            "--no-diagnose",
            "--json",
            str(out),
            "--max-rate",
            "0",
            "--no-history",
            "--",
            "-k",
            "dice",
        ],
        fixture_dir / "mini",
        config_file,
    )
    doc = json.loads(out.read_text())
    assert [t["nodeid"] for t in doc["tests"]] == ["test_mini.py::test_dice"]
    t = doc["tests"][0]
    assert t["runs"] == 4 and doc["runs"] == 4
    assert p.returncode == (1 if t["failures"] else 0)
    if t["verdict"] == "flaky":
        assert t["root_cause"] == "unknown" and any("not diagnosed" in e for e in t["evidence"])
    assert not (tmp_path / "data" / "agentdeck.db").exists() or "recorded as" not in p.stdout


def test_user_errors_are_one_clear_line(tmp_path: Path, fixture_dir: Path, config_file: Path) -> None:
    for args, needle in (
        (["flaky", "--max-rate", "2"], "--max-rate"),
        (["flaky", "--runs", "0"], "--runs"),
        (["flaky", "--project", str(tmp_path / "nope")], "no such directory"),
    ):
        p = cli(args, fixture_dir / "mini", config_file)
        lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
        assert p.returncode == 2 and len(lines) == 1 and needle in lines[0], p.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "pytest.ini").write_text("[pytest]\n")
    p = cli(["flaky", "--runs", "2", "-q"], empty, config_file)
    assert p.returncode == 2 and "no tests" in p.stderr and "Traceback" not in p.stderr
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "pytest.ini").write_text("[pytest]\n")
    (bad / "test_bad.py").write_text("def test_x(:\n    pass\n")
    p = cli(["flaky", "--runs", "2", "-q"], bad, config_file)
    assert p.returncode == 2 and "could not collect test_bad.py" in p.stderr and "Traceback" not in p.stderr
