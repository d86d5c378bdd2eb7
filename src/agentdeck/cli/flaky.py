"""`agentdeck flaky`: find flaky tests, name their cause by experiment, and check that fixes held.

    agentdeck flaky [--runs N] [--json PATH] [--max-rate R] [-- PYTEST ARGS]   run and diagnose
    agentdeck flaky --hunt [--budget 10m]                     also stress every test for latent flaky ones
    agentdeck flaky --junit PATH --github --quarantine PATH    CI outputs; exit 0 clean, 1 broken, 3 flaky only
    agentdeck flaky --compare [--json PATH]                                    before/after a fix, trend
    agentdeck flaky --compare --test NODEID                                    one test in every session
    agentdeck flaky --history [--by week|month]                flaky count over time, fixes being verified

Runs on the project in the current directory (or --project DIR); results go to the shared
SQLite database so `--compare` and the console's Flaky pane can show history.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from agentdeck.errors import AgentdeckError

NAME = "flaky"


class FlakyUsageError(AgentdeckError):
    """A flag value the runner cannot use."""


def parse_duration(text: str) -> float:
    """'90', '90s', '10m', '1.5h' -> seconds (the --budget value)."""
    units = {"s": 1.0, "m": 60.0, "h": 3600.0}
    t = text.strip().lower()
    scale = units.get(t[-1:], None)
    number = t[:-1] if scale is not None else t
    try:
        value = float(number) * (scale or 1.0)
    except ValueError:
        raise FlakyUsageError(f"--budget: not a duration: {text!r} (e.g. 90s, 10m, 1h)") from None
    if value <= 0:
        raise FlakyUsageError("--budget must be positive")
    return value


def register(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    # --config is SUPPRESSed here (not the shared parent) so `agentdeck --config P flaky` keeps P.
    cfg = argparse.ArgumentParser(add_help=False)
    cfg.add_argument(
        "--config",
        metavar="P",
        default=argparse.SUPPRESS,
        help="config file (default: $AGENTDECK_CONFIG or ~/.config/agentdeck/config.toml)",
    )
    p = subparsers.add_parser(
        NAME,
        parents=[cfg],
        help="find flaky tests, name the cause, recommend the fix",
        description="Rerun the test suite in fresh processes, run each test alone and in shuffled orders, bisect order "
        "dependence, and perturb timing, dependencies and resources to name why each flaky test fails.",
        epilog="Everything after `--` goes to pytest, e.g. `agentdeck flaky --runs 100 -- tests/unit -k cache`.",
    )
    p.add_argument("--runs", type=int, default=50, metavar="N", help="same-order runs of the suite (default 50)")
    p.add_argument("--json", metavar="PATH", help="write the JSON report here ('-' for stdout)")
    p.add_argument("--max-rate", type=float, metavar="R", help="exit 1 if any test's failure rate is above R (for CI)")
    p.add_argument("--report", metavar="PATH", help="write a Markdown report here")
    p.add_argument("--workers", type=int, metavar="W", help="processes at once (default: CPU count)")
    p.add_argument(
        "--timeout",
        type=float,
        default=60.0,
        metavar="S",
        help="kill a test that runs longer than S seconds (default 60)",
    )
    p.add_argument("--shuffles", type=int, default=10, metavar="K", help="shuffled-order runs (default 10)")
    p.add_argument(
        "--alone-runs", type=int, default=20, metavar="N", help="runs of each candidate alone, the control (default 20)"
    )
    p.add_argument("--no-diagnose", action="store_true", help="only the same-order runs: verdicts and rates, no causes")
    p.add_argument(
        "--engine",
        choices=("auto", "fork", "subprocess"),
        default="auto",
        help="fork after collection (fast, default on POSIX) or a fresh process per run",
    )
    p.add_argument(
        "--seed", type=int, metavar="S", help="master seed (shuffles, per-run random seeds) to repeat a session"
    )
    p.add_argument("--project", metavar="DIR", default=".", help="project directory (default: the current one)")
    p.add_argument("--python", metavar="PATH", help="interpreter that runs the tests (default: this one)")
    p.add_argument("--show-stable", action="store_true", help="list stable tests too")
    p.add_argument("--no-history", action="store_true", help="do not record this session in the database")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress display")
    p.add_argument(
        "--keep-tmp", action="store_true", help="keep the runner's temp dir (pytest output, per-run tmp_path)"
    )
    p.add_argument(
        "--compare",
        action="store_true",
        help="show before/after for tests that were flaky, and the trend; runs nothing",
    )
    p.add_argument("--test", metavar="NODEID", help="with --compare: this test's result in every session")
    p.add_argument(
        "--hunt",
        action="store_true",
        help="also run every test under stress (4 copies, CPU contention, lowered limits, slow network, other "
        "timezones) to find latent flaky tests",
    )
    p.add_argument("--budget", metavar="DUR", default="10m", help="with --hunt: time for the whole session (default 10m)")
    p.add_argument("--junit", metavar="PATH", help="write JUnit XML (verdict, rate, cause as properties) for CI")
    p.add_argument("--github", action="store_true", help="print GitHub Actions annotations on the failing lines")
    p.add_argument(
        "--quarantine", metavar="PATH", help="write the flaky node ids as `--deselect=` lines for `pytest @PATH`"
    )
    p.add_argument(
        "--history", action="store_true", help="flaky tests per week/month and the fixes being verified; runs nothing"
    )
    p.add_argument("--by", choices=("week", "month"), default="week", help="with --history: the period (default week)")
    p.add_argument("pytest_args", nargs="*", metavar="PYTEST ARGS", help="arguments for pytest, after `--`")
    p.set_defaults(func=run)


def _validate(args: argparse.Namespace) -> None:
    if args.runs < 1:
        raise FlakyUsageError("--runs must be at least 1")
    if args.max_rate is not None and not 0.0 <= args.max_rate <= 1.0:
        raise FlakyUsageError("--max-rate must be between 0 and 1 (a failure rate, e.g. 0.01)")
    if args.workers is not None and args.workers < 1:
        raise FlakyUsageError("--workers must be at least 1")
    if args.timeout <= 0:
        raise FlakyUsageError("--timeout must be positive")
    if args.shuffles < 0 or args.alone_runs < 1:
        raise FlakyUsageError("--shuffles must be >= 0 and --alone-runs >= 1")
    if not Path(args.project).is_dir():
        raise FlakyUsageError(f"--project: no such directory: {args.project}")
    args.budget_s = parse_duration(args.budget)
    if args.hunt and args.no_diagnose:
        raise FlakyUsageError("--hunt needs the diagnosis (drop --no-diagnose)")


class _PlainProgress:
    """Phase lines for logs and pipes (no terminal)."""

    def __init__(self) -> None:
        self.phase = ""
        self.started = time.monotonic()

    def __call__(self, p: Any) -> None:
        if p.phase != self.phase:
            if self.phase:
                print(f"agentdeck flaky: {self.phase} done in {time.monotonic() - self.started:.1f} s", file=sys.stderr)
            self.phase, self.started = p.phase, time.monotonic()
            if p.phase != "done":
                print(f"agentdeck flaky: {p.label}...", file=sys.stderr)

    def close(self) -> None:
        pass


class _RichProgress:
    """A live progress bar per phase on stderr."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("[yellow]{task.fields[failing]} tests failing[/]"),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=False,
        )
        self.progress.start()
        self.tasks: dict[str, Any] = {}

    def __call__(self, p: Any) -> None:
        if p.phase == "done":
            for task in self.tasks.values():
                self.progress.update(task, completed=self.progress.tasks[task].total)
            return
        task = self.tasks.get(p.phase)
        if task is None:
            for other in self.tasks.values():
                self.progress.update(other, completed=self.progress.tasks[other].total)
            task = self.tasks[p.phase] = self.progress.add_task(p.label, total=max(p.total, 1), failing=p.failing)
        self.progress.update(task, completed=p.done, total=max(p.total, 1), failing=p.failing)

    def close(self) -> None:
        self.progress.stop()


def _console() -> Any:
    """stdout; wide enough off a terminal (logs, CI) that node ids are not folded."""
    from rich.console import Console

    return Console() if sys.stdout.isatty() else Console(width=160)


def run(args: argparse.Namespace) -> int:
    from agentdeck.cli.common import config_from
    from agentdeck.store import connect, db_path

    cfg = config_from(args)
    if args.compare:
        return _compare(args, db_path(cfg.gateway.data_dir))
    if args.history:
        return _history(args, db_path(cfg.gateway.data_dir))
    _validate(args)
    from agentdeck.flaky.history import save_report
    from agentdeck.flaky.report import details, markdown, summary_table, write_json
    from agentdeck.flaky.runner import FlakyOptions, run_flaky

    opts = FlakyOptions(
        project_dir=Path(args.project),
        pytest_args=list(args.pytest_args),
        runs=args.runs,
        workers=args.workers,
        timeout=args.timeout,
        shuffles=args.shuffles,
        alone_runs=args.alone_runs,
        diagnose=not args.no_diagnose,
        engine=args.engine,
        seed=args.seed,
        python=args.python or sys.executable,
        keep_tmp=args.keep_tmp,
        hunt=args.hunt,
        budget_s=args.budget_s,
    )
    display: _PlainProgress | _RichProgress | None = None
    if not args.quiet:
        display = _RichProgress() if sys.stderr.isatty() else _PlainProgress()
    try:
        report = run_flaky(opts, progress=display)
    finally:
        if display is not None:
            display.close()
    session = None
    if not args.no_history:
        conn = connect(db_path(cfg.gateway.data_dir))
        try:
            session = save_report(conn, report)
        finally:
            conn.close()
    if args.json:
        write_json(report, args.json)
    if args.report:
        Path(args.report).write_text(markdown(report), encoding="utf-8")
    ci_outputs = bool(args.junit or args.github or args.quarantine or args.hunt)
    if ci_outputs:
        from agentdeck.flaky.ci import github_annotations, write_junit, write_quarantine

        if args.junit:
            write_junit(report, args.junit)
        if args.quarantine:
            write_quarantine(report, args.quarantine)
        if args.github:
            for line in github_annotations(report):
                print(line)
    if args.json != "-":
        console = _console()
        console.print(summary_table(report, show_stable=args.show_stable))
        for block in details(report):
            console.print(block)
        for w in report.warnings:
            console.print(f"[yellow]warning:[/] {w}")
        if report.tmp_dir:
            console.print(f"[dim]kept the runner's temp dir: {report.tmp_dir}[/]")
        if session is not None:
            console.print(f"[dim]recorded as session {session}; `agentdeck flaky --compare` shows before/after[/]")
    if args.max_rate is not None:
        over = [t for t in report.tests if t.failure_rate > args.max_rate]
        if over:
            worst = max(over, key=lambda t: t.failure_rate)
            print(
                f"agentdeck flaky: {len(over)} test(s) fail more often than --max-rate {args.max_rate:g} "
                f"(worst: {worst.nodeid} at {worst.failure_rate:.1%})",
                file=sys.stderr,
            )
            return 1
        return 0
    if ci_outputs:
        from agentdeck.flaky.ci import ci_exit_code

        return ci_exit_code(report)
    return 0


def _history(args: argparse.Namespace, path: Path) -> int:
    from agentdeck.flaky.history import compare, trend
    from agentdeck.flaky.report import trend_plot, verification_table
    from agentdeck.store import connect

    project = str(Path(args.project).resolve())
    conn = connect(path)
    try:
        points = trend(conn, project, args.by)
        rows = compare(conn, project)
    finally:
        conn.close()
    if args.json:
        doc = {"by": args.by, "periods": [p.to_json() for p in points], "tests": [c.to_json() for c in rows]}
        text = json.dumps(doc, indent=2)
        if args.json == "-":
            print(text)
            return 0
        Path(args.json).write_text(text + "\n", encoding="utf-8")
    console = _console()
    if not points:
        console.print(f"no flaky-test sessions recorded for {project} yet; run `agentdeck flaky` first")
        return 0
    console.print(trend_plot(points))
    if rows:
        console.print(verification_table(rows))
    return 0


def _compare(args: argparse.Namespace, path: Path) -> int:
    from agentdeck.flaky.history import compare, flaky_over_time, history_of_test
    from agentdeck.flaky.report import compare_json, compare_table, history_table, trend_table
    from agentdeck.store import connect

    project = str(Path(args.project).resolve())
    conn = connect(path)
    try:
        rows = compare(conn, project)
        trend = flaky_over_time(conn, project)
        one = history_of_test(conn, project, args.test) if args.test else None
    finally:
        conn.close()
    if one is not None:
        if args.json:
            text = json.dumps({"nodeid": args.test, "sessions": one}, indent=2)
            if args.json == "-":
                print(text)
                return 0
            Path(args.json).write_text(text + "\n", encoding="utf-8")
        if not one:
            raise FlakyUsageError(f"no recorded runs of {args.test} in {project}")
        _console().print(history_table(args.test, one))
        return 0
    if args.json:
        doc = compare_json(rows, trend)
        if args.json == "-":
            print(json.dumps(doc, indent=2))
            return 0
        Path(args.json).write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    console = _console()
    if not trend:
        console.print(f"no flaky-test sessions recorded for {project} yet; run `agentdeck flaky` first")
        return 0
    console.print(trend_table(trend))
    if rows:
        console.print(compare_table(rows))
    else:
        console.print("no test has been flaky or broken here")
    return 0
