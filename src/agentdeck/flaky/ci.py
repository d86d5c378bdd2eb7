"""The flaky report in the shapes CI systems read: JUnit XML, GitHub annotations, a quarantine list.

Why three: dashboards (Jenkins, GitLab, CircleCI, Azure) read JUnit XML, so each test's
verdict, failure rate and cause go there as ``<properties>`` and flaky tests stay apart
from failing ones (a broken test is a ``<failure>``, a flaky one passes with
``agentdeck.verdict=flaky``); GitHub shows ``::warning``/``::error`` workflow commands on the
failing line of the diff; and a quarantine file lets the next ``pytest`` run leave the
flaky tests out (``pytest @quarantine.txt``: one ``--deselect=<node id>`` per line, which
pytest reads as arguments) while they are fixed.

Exit codes for CI (``ci_exit_code``): 0 nothing flaky or broken, 1 broken tests, 3 flaky
tests only.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from agentdeck.flaky.analysis import TestVerdict, pct
from agentdeck.flaky.runner import FlakyReport

EXIT_OK, EXIT_BROKEN, EXIT_FLAKY = 0, 1, 3
QUARANTINE_PREFIX = "--deselect="


def ci_exit_code(report: FlakyReport) -> int:
    if report.count("broken"):
        return EXIT_BROKEN
    if report.count("flaky"):
        return EXIT_FLAKY
    return EXIT_OK


def _split(nodeid: str) -> tuple[str, str]:
    """(classname, name) as JUnit readers expect: the module path dotted, then the test name."""
    path, _, rest = nodeid.partition("::")
    module = path[:-3] if path.endswith(".py") else path
    parts = rest.split("::")
    classname = ".".join([module.replace("/", "."), *parts[:-1]])
    return classname, parts[-1] if parts else nodeid


def _properties(t: TestVerdict) -> list[tuple[str, str]]:
    props = [
        ("agentdeck.verdict", t.verdict),
        ("agentdeck.failure_rate", f"{t.failure_rate:.4f}"),
        ("agentdeck.runs", str(t.runs)),
        ("agentdeck.failures", str(t.failures)),
        ("agentdeck.ci95", f"{t.ci95[0]:.4f}-{t.ci95[1]:.4f}"),
    ]
    if t.root_cause:
        props.append(("agentdeck.root_cause", t.root_cause))
    if t.confidence is not None:
        props.append(("agentdeck.confidence", f"{t.confidence:.3f}"))
    if t.evidence_kind:
        props.append(("agentdeck.evidence_kind", t.evidence_kind))
    if t.culprit:
        props.append(("agentdeck.culprit", t.culprit))
    if t.latent:
        props.append(("agentdeck.latent", "true"))
    return props


def junit_xml(report: FlakyReport) -> bytes:
    """One <testsuite> of every test; broken tests fail, flaky ones pass with their verdict as a property."""
    tests = report.tests
    failures = sum(t.verdict == "broken" for t in tests)
    skipped = sum(t.runs == 0 for t in tests)
    suites = ET.Element("testsuites", name="agentdeck flaky", tests=str(len(tests)), failures=str(failures), errors="0")
    suite = ET.SubElement(
        suites,
        "testsuite",
        name=f"agentdeck flaky: {Path(report.project).name}",
        tests=str(len(tests)),
        failures=str(failures),
        errors="0",
        skipped=str(skipped),
        time=f"{report.duration_s:.3f}",
    )
    props = ET.SubElement(suite, "properties")
    for name, value in (
        ("agentdeck.runs", str(report.runs)),
        ("agentdeck.flaky", str(report.count("flaky"))),
        ("agentdeck.broken", str(report.count("broken"))),
        ("agentdeck.seed", str(report.seed)),
    ):
        ET.SubElement(props, "property", name=name, value=value)
    durations: dict[int, list[float]] = {}
    for r in report.records:
        durations.setdefault(r.idx, []).append(r.duration)
    index = {n: i for i, n in enumerate(report.nodeids)}
    for t in tests:
        classname, name = _split(t.nodeid)
        ds = durations.get(index.get(t.nodeid, -1), [])
        case = ET.SubElement(
            suite, "testcase", classname=classname, name=name, time=f"{(sum(ds) / len(ds)) if ds else 0.0:.4f}"
        )
        cp = ET.SubElement(case, "properties")
        for pname, value in _properties(t):
            ET.SubElement(cp, "property", name=pname, value=value)
        summary = f"{t.verdict}: failed {t.failures}/{t.runs} runs ({pct(t.failure_rate)})" + (
            f", cause {t.root_cause}" if t.root_cause else ""
        )
        if t.runs == 0:
            ET.SubElement(case, "skipped", message=t.evidence[0] if t.evidence else "never ran")
        elif t.verdict == "broken":
            failure = ET.SubElement(case, "failure", message=summary, type="broken")
            failure.text = "\n".join([*t.evidence, f"fix: {t.recommendation}"])
        if t.verdict == "flaky":
            out = ET.SubElement(case, "system-out")
            out.text = "\n".join([summary, *t.evidence, f"fix: {t.recommendation}"])
    ET.indent(suites)
    return ET.tostring(suites, encoding="utf-8", xml_declaration=True)


def write_junit(report: FlakyReport, path: str) -> None:
    Path(path).write_bytes(junit_xml(report) + b"\n")


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_prop(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def _line_of(report: FlakyReport, t: TestVerdict) -> tuple[str, int | None]:
    """The failing line in the test file (from the failures), else the test's file alone."""
    idx = report.nodeids.index(t.nodeid) if t.nodeid in report.nodeids else -1
    for r in report.records:
        if r.idx == idx and r.test_line:
            path, _, line = r.test_line.rpartition(":")
            if line.isdigit():
                return path, int(line)
    return t.nodeid.split("::")[0], None


def github_annotations(report: FlakyReport) -> list[str]:
    """``::error`` for broken tests and ``::warning`` for flaky ones, on the failing line."""
    root = Path(report.project)
    out = []
    for t in report.tests:
        if t.verdict == "stable":
            continue
        path, line = _line_of(report, t)
        try:
            shown = str((root / path).resolve().relative_to(Path.cwd().resolve()))
        except ValueError:
            shown = path
        level = "error" if t.verdict == "broken" else "warning"
        title = f"{t.verdict} test ({pct(t.failure_rate)} of {t.runs} runs" + (
            f", {t.root_cause})" if t.root_cause else ")"
        )
        where = f"file={_escape_prop(shown)}" + (f",line={line}" if line else "")
        message = "\n".join([t.nodeid, *(t.evidence[:2]), f"fix: {t.recommendation}"])
        out.append(f"::{level} {where},title={_escape_prop(title)}::{_escape_data(message)}")
    return out


def write_quarantine(report: FlakyReport, path: str) -> list[str]:
    """The flaky tests as pytest arguments, one per line; returns their node ids."""
    ids = [t.nodeid for t in report.tests if t.verdict == "flaky"]
    Path(path).write_text("".join(f"{QUARANTINE_PREFIX}{n}\n" for n in ids), encoding="utf-8")
    return ids
