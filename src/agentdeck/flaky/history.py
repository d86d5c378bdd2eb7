"""Flaky-test history in the shared SQLite database: sessions, verdicts, every run; before/after a fix.

"Fixed" is a statistical claim, not a feeling: after a test failed at rate p, it takes
n = ln(0.05) / ln(1 - p) clean runs in a row before a remaining failure rate of p would have
shown up with 95% probability (59 runs for 5%, 299 for 1%). ``compare`` counts the clean
unperturbed runs since the last session that found the test flaky or broken.
"""

from __future__ import annotations

import datetime as _dt
import json
import sqlite3
import time
from dataclasses import dataclass
from typing import Any

from agentdeck.flaky.experiments import UNPERTURBED
from agentdeck.flaky.protocol import FAIL_OUTCOMES
from agentdeck.flaky.runner import FlakyReport
from agentdeck.flaky.stats import runs_needed


def _test_ids(conn: sqlite3.Connection, project: str, nodeids: list[str]) -> dict[str, int]:
    conn.executemany(
        "INSERT OR IGNORE INTO flaky_tests (project, nodeid) VALUES (?, ?)", [(project, n) for n in nodeids]
    )
    ids: dict[str, int] = {}
    for chunk in range(0, len(nodeids), 500):
        part = nodeids[chunk : chunk + 500]
        rows = conn.execute(
            f"SELECT id, nodeid FROM flaky_tests WHERE project = ? AND nodeid IN ({','.join('?' * len(part))})",
            [project, *part],
        ).fetchall()
        ids.update({r[1]: r[0] for r in rows})
    return ids


def save_report(conn: sqlite3.Connection, report: FlakyReport) -> int:
    """Store one session (verdicts and every run record); return its id."""
    doc = report.to_json()
    with conn:
        cur = conn.execute(
            "INSERT INTO flaky_sessions (started_at, finished_at, project, pytest_args, runs, engine, workers, seed, diagnosed,"
            " duration_s, n_tests, n_stable, n_flaky, n_broken, report_json) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                report.started_at,
                time.time(),
                report.project,
                json.dumps(report.pytest_args),
                report.runs,
                report.engine,
                report.workers,
                report.seed,
                int(report.diagnosed),
                report.duration_s,
                len(report.tests),
                report.count("stable"),
                report.count("flaky"),
                report.count("broken"),
                json.dumps(doc),
            ),
        )
        session_id = int(cur.lastrowid or 0)
        ids = _test_ids(conn, report.project, report.nodeids or [t.nodeid for t in report.tests])
        conn.executemany(
            "INSERT INTO flaky_results (session_id, test_id, runs, failures, failure_rate, ci_low, ci_high, verdict, root_cause,"
            " evidence, recommendation, culprit) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            [
                (
                    session_id,
                    ids[t.nodeid],
                    t.runs,
                    t.failures,
                    t.failure_rate,
                    t.ci95[0],
                    t.ci95[1],
                    t.verdict,
                    t.root_cause,
                    json.dumps(t.evidence),
                    t.recommendation,
                    t.culprit,
                )
                for t in report.tests
            ],
        )
        names = report.nodeids
        conn.executemany(
            "INSERT INTO flaky_runs (session_id, test_id, ts, experiment, run, position, outcome, phase, duration_s, exc_type,"
            " errno, message, location, seed, order_seed) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            [
                (
                    session_id,
                    ids[names[r.idx]],
                    r.ts,
                    r.experiment,
                    r.run,
                    r.pos,
                    r.outcome,
                    r.phase,
                    r.duration,
                    r.exc,
                    r.errno,
                    (r.message or "")[:1000] if r.outcome in FAIL_OUTCOMES else None,
                    r.test_line or r.location,
                    r.seed,
                    r.order_seed,
                )
                for r in report.records
            ],
        )
    return session_id


@dataclass
class SessionRow:
    id: int
    started_at: float
    project: str
    runs: int
    n_tests: int
    n_stable: int
    n_flaky: int
    n_broken: int
    duration_s: float


def sessions(conn: sqlite3.Connection, project: str | None = None, limit: int = 1000) -> list[SessionRow]:
    """Sessions, oldest first (for one project, or all)."""
    sql = "SELECT id, started_at, project, runs, n_tests, n_stable, n_flaky, n_broken, duration_s FROM flaky_sessions"
    args: list[Any] = []
    if project is not None:
        sql += " WHERE project = ?"
        args.append(project)
    sql += " ORDER BY started_at DESC, id DESC LIMIT ?"
    args.append(limit)
    rows = [SessionRow(*tuple(r)) for r in conn.execute(sql, args).fetchall()]
    return rows[::-1]


def latest_report(conn: sqlite3.Connection, project: str | None = None) -> dict[str, Any] | None:
    """The newest session's --json document (what the console shows before a new run)."""
    sql = "SELECT report_json FROM flaky_sessions"
    args: list[Any] = []
    if project is not None:
        sql += " WHERE project = ?"
        args.append(project)
    row = conn.execute(sql + " ORDER BY started_at DESC, id DESC LIMIT 1", args).fetchone()
    return json.loads(row[0]) if row else None


def runs_of_test(conn: sqlite3.Connection, project: str, nodeid: str) -> list[dict[str, Any]]:
    """Every recorded run of one test over time, oldest first."""
    rows = conn.execute(
        "SELECT r.session_id, r.ts, r.experiment, r.run, r.position, r.outcome, r.duration_s, r.exc_type, r.message,"
        " r.location, r.seed FROM flaky_runs r JOIN flaky_tests t ON t.id = r.test_id"
        " WHERE t.project = ? AND t.nodeid = ? ORDER BY r.ts, r.id",
        (project, nodeid),
    ).fetchall()
    keys = (
        "session_id",
        "ts",
        "experiment",
        "run",
        "position",
        "outcome",
        "duration_s",
        "exc_type",
        "message",
        "location",
        "seed",
    )
    return [dict(zip(keys, tuple(r), strict=True)) for r in rows]


@dataclass
class Comparison:
    nodeid: str
    before_session: int
    before_at: float
    before_verdict: str
    before_rate: float
    before_cause: str | None
    after_runs: int
    after_failures: int
    needed: int
    status: str  # fixed | not yet | still failing

    def to_json(self) -> dict[str, Any]:
        return {
            "nodeid": self.nodeid,
            "status": self.status,
            "before": {
                "session": self.before_session,
                "at": self.before_at,
                "verdict": self.before_verdict,
                "failure_rate": round(self.before_rate, 4),
                "root_cause": self.before_cause,
            },
            "after": {
                "runs": self.after_runs,
                "failures": self.after_failures,
                "failure_rate": round(self.after_failures / self.after_runs, 4) if self.after_runs else None,
            },
            "clean_runs_needed": self.needed,
        }


def compare(conn: sqlite3.Connection, project: str) -> list[Comparison]:
    """For every test that was ever flaky or broken here: before the fix against everything since.

    If the newest session that ran the test still found it flaky or broken, it is "still
    failing" (compared with the bad session before that one, if any). Otherwise "before" is
    the last bad session, and the clean unperturbed runs since decide "fixed" or "not yet".
    """
    rows = conn.execute(
        "SELECT t.id, t.nodeid, s.id, s.started_at, r.verdict, r.failure_rate, r.root_cause FROM flaky_results r"
        " JOIN flaky_sessions s ON s.id = r.session_id JOIN flaky_tests t ON t.id = r.test_id"
        " WHERE s.project = ? AND r.runs > 0 ORDER BY s.started_at, s.id",
        (project,),
    ).fetchall()
    history: dict[int, list[tuple[Any, ...]]] = {}
    for row in rows:
        history.setdefault(row[0], []).append(tuple(row))
    out = []
    placeholders = ",".join("?" * len(UNPERTURBED))
    for test_id, results in history.items():
        bad = [r for r in results if r[4] in ("flaky", "broken")]
        if not bad:
            continue
        newest_is_bad = results[-1][4] in ("flaky", "broken")
        before = (bad[-2] if len(bad) > 1 else bad[-1]) if newest_is_bad else bad[-1]
        _, nodeid, session_id, started_at, verdict, rate, cause = before
        runs_after = conn.execute(
            f"SELECT r.outcome FROM flaky_runs r JOIN flaky_sessions s ON s.id = r.session_id WHERE r.test_id = ?"
            f" AND (s.started_at > ? OR (s.started_at = ? AND s.id > ?)) AND r.experiment IN ({placeholders})"
            " AND r.outcome != 'skipped'",
            (test_id, started_at, started_at, session_id, *UNPERTURBED),
        ).fetchall()
        runs = len(runs_after)
        fails = sum(1 for r in runs_after if r[0] in FAIL_OUTCOMES)
        needed = runs_needed(rate)
        if newest_is_bad:
            status = "still failing"
        elif runs >= needed and not fails:
            status = "fixed"
        else:
            status = "not yet"
        out.append(Comparison(nodeid, session_id, started_at, verdict, rate, cause, runs, fails, needed, status))
    out.sort(key=lambda c: ({"still failing": 0, "not yet": 1, "fixed": 2}[c.status], c.nodeid))
    return out


def history_of_test(conn: sqlite3.Connection, project: str, nodeid: str) -> list[dict[str, Any]]:
    """One test's result in every session that ran it, oldest first."""
    rows = conn.execute(
        "SELECT s.id, s.started_at, r.runs, r.failures, r.failure_rate, r.verdict, r.root_cause, r.culprit FROM flaky_results r"
        " JOIN flaky_sessions s ON s.id = r.session_id JOIN flaky_tests t ON t.id = r.test_id"
        " WHERE s.project = ? AND t.nodeid = ? ORDER BY s.started_at, s.id",
        (project, nodeid),
    ).fetchall()
    keys = ("session", "started_at", "runs", "failures", "failure_rate", "verdict", "root_cause", "culprit")
    return [dict(zip(keys, tuple(r), strict=True)) for r in rows]


def flaky_over_time(conn: sqlite3.Connection, project: str) -> list[SessionRow]:
    return sessions(conn, project)


@dataclass
class TrendPoint:
    """The suite's state at the end of one week or month: its last session's counts."""

    period: str  # "2026-W49" or "2026-12"
    sessions: int
    flaky: int
    broken: int
    tests: int

    def to_json(self) -> dict[str, Any]:
        return {
            "period": self.period,
            "sessions": self.sessions,
            "flaky": self.flaky,
            "broken": self.broken,
            "tests": self.tests,
        }


def period_of(ts: float, by: str) -> str:
    d = _dt.datetime.fromtimestamp(ts, tz=_dt.timezone.utc)
    if by == "month":
        return f"{d.year:04d}-{d.month:02d}"
    year, week, _ = d.isocalendar()
    return f"{year:04d}-W{week:02d}"


def trend(conn: sqlite3.Connection, project: str, by: str = "week") -> list[TrendPoint]:
    """Flaky and broken counts per week (or month), oldest first: the number that should trend to zero.

    A period's count is its *last* session's (the suite as it stood when the period ended), not a
    sum: running the runner more often must not make the line go up.
    """
    if by not in ("week", "month"):
        raise ValueError(f"by must be 'week' or 'month', not {by!r}")
    points: dict[str, TrendPoint] = {}
    for s in sessions(conn, project, limit=100_000):
        key = period_of(s.started_at, by)
        p = points.get(key)
        if p is None:
            points[key] = TrendPoint(key, 1, s.n_flaky, s.n_broken, s.n_tests)
        else:
            p.sessions += 1
            p.flaky, p.broken, p.tests = s.n_flaky, s.n_broken, s.n_tests
    return [points[k] for k in sorted(points)]
