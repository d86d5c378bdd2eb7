"""Presenting a flaky report: the --json document, a Markdown report, terminal tables, a histogram."""

from __future__ import annotations

import datetime as _dt
import json
import shlex
from pathlib import Path
from typing import Any

from rich.table import Table
from rich.text import Text

from agentdeck.flaky.analysis import TestVerdict, pct
from agentdeck.flaky.history import Comparison, SessionRow, TrendPoint
from agentdeck.flaky.runner import FlakyReport

BLOCKS = " ▏▎▍▌▋▊▉█"


def write_json(report: FlakyReport, path: str) -> None:
    text = json.dumps(report.to_json(), indent=2)
    if path == "-":
        print(text)
    else:
        Path(path).write_text(text + "\n", encoding="utf-8")


def histogram(rates: list[float], buckets: int = 10) -> list[int]:
    """How many tests fall in each failure-rate bucket [0,10%), [10,20%) ... [90,100%]."""
    counts = [0] * buckets
    for r in rates:
        counts[min(buckets - 1, int(r * buckets))] += 1
    return counts


def bar(value: float, width: int) -> str:
    """A horizontal bar in eighth-blocks, ``value`` in [0, 1] of ``width`` cells."""
    eighths = round(max(0.0, min(1.0, value)) * width * 8)
    full, part = divmod(eighths, 8)
    return "█" * full + (BLOCKS[part] if part else "")


def histogram_lines(rates: list[float], width: int = 30, buckets: int = 10) -> list[tuple[str, str, int]]:
    """(label, bar, count) rows for the failure rates of the tests that failed at all."""
    counts = histogram(rates, buckets)
    top = max(counts, default=0) or 1
    step = 100 // buckets
    return [(f"{f'{i * step}-{(i + 1) * step}%':>7}", bar(c / top, width), c) for i, c in enumerate(counts)]


def _when(ts: float) -> str:
    return _dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M")


def _cmd(report: FlakyReport) -> str:
    return "pytest" + (" " + shlex.join(report.pytest_args) if report.pytest_args else "")


def markdown(report: FlakyReport) -> str:
    flaky = sorted((t for t in report.tests if t.verdict == "flaky"), key=lambda t: -t.failure_rate)
    broken = [t for t in report.tests if t.verdict == "broken"]
    stable = [t for t in report.tests if t.verdict == "stable"]
    shuffles = max((r.run + 1 for r in report.records if r.experiment == "shuffled"), default=0)
    lines = [
        f"# Flaky-test report: {Path(report.project).name}",
        "",
        f"{_when(report.started_at)} · `{_cmd(report)}` in `{report.project}` · {report.runs} same-order runs"
        + (
            f", {shuffles} shuffled, every test alone, experiments on each candidate"
            if report.diagnosed
            else " (no diagnosis)"
        )
        + f" · engine {report.engine}, {report.workers} workers, seed {report.seed} · {report.duration_s:.1f} s",
        "",
        f"**{len(report.tests)} tests: {len(stable)} stable, {len(flaky)} flaky, {len(broken)} broken.**",
        "",
    ]
    for w in report.warnings:
        lines.append(f"> warning: {w}")
    if report.warnings:
        lines.append("")
    if flaky:
        lines += [
            "## Flaky tests",
            "",
            "| test | failure rate (95% CI) | runs | root cause | culprit |",
            "|---|---|---|---|---|",
        ]
        for t in flaky:
            lines.append(
                f"| `{t.nodeid}` | {pct(t.failure_rate)} ({pct(t.ci95[0])}-{pct(t.ci95[1])}) | {t.failures}/{t.runs} "
                f"| {t.root_cause} | {('`' + t.culprit + '`') if t.culprit else ''} |"
            )
        lines.append("")
        for t in flaky:
            lines += _detail(t)
    if broken:
        lines += ["## Broken tests (not flaky: they fail every run)", ""]
        for t in broken:
            lines += _detail(t)
    rates = [t.failure_rate for t in report.tests if t.failures]
    if rates:
        lines += ["## Failure rates", "", "```"]
        lines += [f"{label}  {b:<30} {c}" for label, b, c in histogram_lines(rates)]
        lines += ["```", ""]
    if stable:
        lines += [
            "## Stable tests",
            "",
            f"{len(stable)} test{'s' if len(stable) != 1 else ''} never failed.",
            "",
            "<details><summary>list</summary>",
            "",
        ]
        lines += [f"- `{t.nodeid}` ({t.runs} runs)" for t in stable]
        lines += ["", "</details>", ""]
    return "\n".join(lines)


def _detail(t: TestVerdict) -> list[str]:
    out = [
        f"### `{t.nodeid}`",
        "",
        f"- **Verdict**: {t.verdict}, failed {t.failures} of {t.runs} runs ({pct(t.failure_rate)}, "
        f"95% CI {pct(t.ci95[0])}-{pct(t.ci95[1])}); same order {t.same_order[0]}/{t.same_order[1]}",
    ]
    if t.root_cause:
        out.append(f"- **Root cause**: {t.root_cause}{_how_sure(t)}")
    out.append("- **Evidence**:")
    out += [f"  - {e}" for e in t.evidence]
    if t.recommendation:
        out.append(f"- **Recommendation**: {t.recommendation}")
    out.append("")
    return out


def _how_sure(t: TestVerdict) -> str:
    """' (92% confident, by experiment)', ' (40%, from the failure signature, unconfirmed)', or ''."""
    if t.confidence is None or t.root_cause in (None, "unknown"):
        return ""
    if t.evidence_kind == "signature":
        return f" ({100 * t.confidence:.0f}%, from the failure signature, unconfirmed)"
    return f" ({100 * t.confidence:.0f}% confident, by experiment)" + (", latent: fails only under stress" if t.latent else "")


def verdict_style(verdict: str) -> str:
    return {"flaky": "bold yellow", "broken": "bold red", "stable": "green"}.get(verdict, "")


def summary_table(report: FlakyReport, show_stable: bool = False) -> Table:
    table = Table(
        title=f"{len(report.tests)} tests · {report.count('stable')} stable · {report.count('flaky')} flaky · "
        f"{report.count('broken')} broken · {report.runs} runs · {report.duration_s:.1f} s",
        title_justify="left",
        expand=False,
    )
    table.add_column("verdict", no_wrap=True)
    table.add_column("rate", justify="right", no_wrap=True)
    table.add_column("fails/runs", justify="right", no_wrap=True)
    table.add_column("95% CI", justify="right", no_wrap=True)
    table.add_column("cause", no_wrap=True)
    table.add_column("test", overflow="fold")
    order = {"broken": 0, "flaky": 1, "stable": 2}
    for t in sorted(report.tests, key=lambda t: (order[t.verdict], -t.failure_rate, t.nodeid)):
        if t.verdict == "stable" and not show_stable:
            continue
        table.add_row(
            Text(t.verdict, style=verdict_style(t.verdict)),
            pct(t.failure_rate),
            f"{t.failures}/{t.runs}",
            f"{pct(t.ci95[0])}-{pct(t.ci95[1])}" if t.failures else "",
            (t.root_cause or "") + ("?" if t.evidence_kind == "signature" else "") + (" (latent)" if t.latent else ""),
            t.nodeid,
        )
    return table


def details(report: FlakyReport) -> list[Text]:
    """For each flaky or broken test: why (the deciding evidence) and what to do."""
    out: list[Text] = []
    order = {"broken": 0, "flaky": 1}
    for t in sorted(
        (t for t in report.tests if t.verdict != "stable"), key=lambda t: (order[t.verdict], -t.failure_rate)
    ):
        block = Text()
        block.append(f"{t.nodeid}", style="bold")
        block.append(
            f"  {t.verdict}" + (f", {t.root_cause}{_how_sure(t)}" if t.root_cause else ""), style=verdict_style(t.verdict)
        )
        for e in t.evidence[:3]:
            block.append(f"\n  · {e}")
        block.append("\n  fix: ", style="bold")
        block.append(t.recommendation)
        out.append(block)
    return out


def compare_table(rows: list[Comparison]) -> Table:
    table = Table(title="Before and after (a fix holds after n = ln(0.05)/ln(1-p) clean runs)", title_justify="left")
    for col, just in (
        ("status", "left"),
        ("test", "left"),
        ("before", "right"),
        ("cause", "left"),
        ("after", "right"),
        ("clean runs", "right"),
    ):
        table.add_column(col, justify=just, overflow="fold")  # type: ignore[arg-type]
    style = {"fixed": "green", "still failing": "bold red", "not yet": "yellow"}
    for c in rows:
        after = f"{c.after_failures}/{c.after_runs}" if c.after_runs else "-"
        clean = f"{c.after_runs if not c.after_failures else 0}/{c.needed}"
        table.add_row(
            Text(c.status, style=style[c.status]),
            c.nodeid,
            f"{pct(c.before_rate)} {c.before_verdict}",
            c.before_cause or "",
            after,
            clean,
        )
    return table


def trend_table(rows: list[SessionRow]) -> Table:
    table = Table(title="Flaky tests over time", title_justify="left")
    for col in ("session", "when", "tests", "flaky", "broken", "runs", ""):
        table.add_column(col, justify="right" if col not in ("when", "") else "left")
    top = max((r.n_flaky for r in rows), default=0) or 1
    for r in rows:
        table.add_row(
            str(r.id),
            _when(r.started_at),
            str(r.n_tests),
            str(r.n_flaky),
            str(r.n_broken),
            str(r.runs),
            Text(bar(r.n_flaky / top, 20), style="yellow"),
        )
    return table


def history_table(nodeid: str, rows: list[dict[str, Any]]) -> Table:
    table = Table(title=f"{nodeid}: every session", title_justify="left")
    for col in ("session", "when", "fails/runs", "rate", "verdict", "cause", "culprit"):
        table.add_column(col, justify="right" if col in ("session", "fails/runs", "rate") else "left")
    for r in rows:
        table.add_row(
            str(r["session"]),
            _when(r["started_at"]),
            f"{r['failures']}/{r['runs']}",
            pct(r["failure_rate"]),
            Text(r["verdict"], style=verdict_style(r["verdict"])),
            r["root_cause"] or "",
            r["culprit"] or "",
        )
    return table


def compare_json(rows: list[Comparison], trend: list[SessionRow]) -> dict[str, Any]:
    return {
        "tests": [c.to_json() for c in rows],
        "sessions": [
            {
                "id": r.id,
                "started_at": r.started_at,
                "tests": r.n_tests,
                "stable": r.n_stable,
                "flaky": r.n_flaky,
                "broken": r.n_broken,
                "runs": r.runs,
            }
            for r in trend
        ],
    }


def trend_plot(points: list[TrendPoint], width: int = 30) -> Table:
    """Flaky (and broken) tests per period as horizontal bars: the line that should reach zero."""
    by = "month" if points and "-W" not in points[0].period else "week"
    table = Table(title=f"Flaky tests per {by} (the last session of each {by})", title_justify="left")
    for col, just in (("period", "left"), ("flaky", "right"), ("", "left"), ("broken", "right"), ("sessions", "right")):
        table.add_column(col, justify=just)  # type: ignore[arg-type]
    top = max((p.flaky for p in points), default=0) or 1
    for p in points:
        table.add_row(
            p.period,
            str(p.flaky),
            Text(bar(p.flaky / top, width) or "·", style="yellow" if p.flaky else "green"),
            str(p.broken),
            str(p.sessions),
        )
    return table


def trend_lines(points: list[TrendPoint], width: int = 20) -> list[tuple[str, str, int]]:
    """(period, bar, flaky count) rows, for the console pane."""
    top = max((p.flaky for p in points), default=0) or 1
    return [(p.period, bar(p.flaky / top, width), p.flaky) for p in points]


def verification_table(rows: list[Comparison]) -> Table:
    """Each test that was flaky: its clean runs since, against the n = ln(0.05)/ln(1-p) a fix needs."""
    table = Table(title="Fixes being verified (n = ln(0.05)/ln(1-p) clean runs)", title_justify="left")
    for col, just in (("status", "left"), ("test", "left"), ("was", "right"), ("clean runs", "right"), ("", "left")):
        table.add_column(col, justify=just, overflow="fold")  # type: ignore[arg-type]
    style = {"fixed": "green", "still failing": "bold red", "not yet": "yellow"}
    for c in rows:
        clean = c.after_runs if not c.after_failures else 0
        table.add_row(
            Text(c.status, style=style[c.status]),
            c.nodeid,
            f"{pct(c.before_rate)} {c.before_verdict}",
            f"{clean}/{c.needed}",
            Text(bar(min(1.0, clean / c.needed) if c.needed else 1.0, 12), style=style[c.status]),
        )
    return table
