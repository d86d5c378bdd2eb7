"""CI outputs: JUnit XML valid against the schema CI systems read, GitHub annotations, a quarantine
file that a later pytest run honours, and the exit codes (0 clean, 1 broken, 3 flaky only)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import xmlschema
from flaky_support import FAST, FIXTURES

from agentdeck.flaky.ci import github_annotations, junit_xml, write_quarantine
from agentdeck.flaky.runner import FlakyReport

SCHEMA = xmlschema.XMLSchema(str(FIXTURES / "junit" / "junit.xsd"))


def test_junit_xml_validates_and_carries_verdict_rate_and_cause(mini_report: FlakyReport, tmp_path: Path) -> None:
    data = junit_xml(mini_report)
    path = tmp_path / "flaky.xml"
    path.write_bytes(data)
    SCHEMA.validate(str(path))  # raises with the offending element if the document does not fit
    root = ET.fromstring(data)
    cases = {c.get("name"): c for c in root.iter("testcase")}
    assert set(cases) == {"test_ok", "test_broken", "test_dice"}
    props = {
        name: {p.get("name"): p.get("value") for p in c.find("properties").iter("property")}
        for name, c in cases.items()
    }
    assert props["test_dice"]["agentdeck.verdict"] == "flaky" and props["test_dice"]["agentdeck.root_cause"] == "randomness"
    assert 0 < float(props["test_dice"]["agentdeck.failure_rate"]) < 1
    assert props["test_ok"]["agentdeck.verdict"] == "stable" and "agentdeck.root_cause" not in props["test_ok"]
    # Dashboards keep flaky apart from failing: only the broken test is a <failure>.
    assert cases["test_broken"].find("failure") is not None and cases["test_dice"].find("failure") is None
    assert cases["test_dice"].find("system-out") is not None
    assert root.find("testsuite").get("failures") == "1"


def test_a_document_that_breaks_the_format_is_rejected() -> None:
    bad = b'<testsuites><testsuite name="x"><testcase name="a"/></testsuite></testsuites>'  # no tests=, no classname=
    assert not SCHEMA.is_valid(bad.decode())


def test_github_annotations_point_at_the_failing_line(mini_report: FlakyReport) -> None:
    lines = github_annotations(mini_report)
    broken = next(ln for ln in lines if ln.startswith("::error "))
    flaky = next(ln for ln in lines if ln.startswith("::warning "))
    assert "test_mini.py,line=11," in broken and "title=broken test" in broken
    assert "test_mini.py,line=15," in flaky and "randomness" in flaky
    assert all("\n" not in ln for ln in lines) and "%0A" in flaky  # one workflow command per line


def test_the_quarantine_file_deselects_the_flaky_tests_in_a_later_pytest_run(
    mini_report: FlakyReport, tmp_path: Path
) -> None:
    proj = tmp_path / "proj"
    shutil.copytree(FIXTURES / "mini", proj)
    path = tmp_path / "quarantine.txt"
    assert write_quarantine(mini_report, str(path)) == ["test_mini.py::test_dice"]
    env = dict(os.environ, **FAST)
    out = subprocess.run(
        [sys.executable, "-m", "pytest", f"@{path}", "-q", "-p", "no:randomly"],
        cwd=proj, env=env, capture_output=True, text=True, timeout=120,
    )
    assert "1 deselected" in out.stdout and "test_dice" not in out.stdout.replace("deselected", ""), out.stdout
    # The same ids as plain --deselect options, and the plugin's "run but do not fail the build" mode.
    ids = [ln.split("=", 1)[1] for ln in path.read_text().splitlines()]
    plain = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", *(f"--deselect={i}" for i in ids), "test_mini.py::test_dice", "test_mini.py::test_ok"],
        cwd=proj, env=env, capture_output=True, text=True, timeout=120,
    )
    assert plain.returncode == 0 and "1 passed, 1 deselected" in plain.stdout, plain.stdout
    marked = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "agentdeck.flaky.plugin", f"--agentdeck-quarantine={path}",
         "-p", "no:randomly", "test_mini.py::test_dice", "-rxX"],
        cwd=proj, env=env, capture_output=True, text=True, timeout=120,
    )
    assert marked.returncode == 0 and ("xfailed" in marked.stdout or "xpassed" in marked.stdout), marked.stdout


def _cli(args: list[str], cwd: Path, config: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, AGENTDECK_CONFIG=str(config), **FAST)
    return subprocess.run(
        [sys.executable, "-m", "agentdeck", "flaky", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=240
    )


def test_exit_codes_for_ci(tmp_path: Path, config_file: Path) -> None:
    proj = tmp_path / "proj"
    shutil.copytree(FIXTURES / "mini", proj)
    quick = ["--runs", "6", "--shuffles", "2", "--alone-runs", "6", "--seed", "5", "--workers", "2", "-q", "--no-history"]
    junit = tmp_path / "out.xml"
    broken = _cli([*quick, "--junit", str(junit), "--github"], proj, config_file)
    assert broken.returncode == 1, broken.stderr  # a broken test
    assert "::error " in broken.stdout and "::warning " in broken.stdout
    SCHEMA.validate(str(junit))
    src = (proj / "test_mini.py").read_text().replace("1 + 1 == 3", "1 + 1 == 2")
    (proj / "test_mini.py").write_text(src)
    flaky = _cli([*quick, "--quarantine", str(tmp_path / "q.txt"), "--json", str(tmp_path / "r.json")], proj, config_file)
    assert flaky.returncode == 3, flaky.stderr  # flaky tests only
    doc = json.loads((tmp_path / "r.json").read_text())
    dice = next(t for t in doc["tests"] if t["nodeid"].endswith("test_dice"))
    assert dice["evidence_kind"] == "experiment" and 0 < dice["confidence"] <= 1
    # --max-rate keeps its meaning: exit 1 above R, else 0, whatever the verdicts.
    tolerant = _cli([*quick, "--quarantine", str(tmp_path / "q.txt"), "--max-rate", "0.9"], proj, config_file)
    assert tolerant.returncode == 0, tolerant.stderr
    (proj / "test_mini.py").write_text(src.replace("random.random() < 0.7", "random.random() < 2"))
    clean = _cli([*quick, "--junit", str(junit)], proj, config_file)
    assert clean.returncode == 0, clean.stderr
    bad = _cli(["--hunt", "--budget", "soon"], proj, config_file)
    assert bad.returncode == 2 and "--budget" in bad.stderr and "Traceback" not in bad.stderr
