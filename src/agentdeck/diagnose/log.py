"""The error-diagnosis log in agentdeck's SQLite database, and the figures that show fixes sticking.

Why a log at all: the framework's promise is that a fixed root cause stops the error class for
good. The log makes that checkable: each entry carries a fingerprint of the error, so when a
similar error is logged after a fix, the earlier fix is marked as having recurred; the recurrence
rate and the time to diagnose then show, over weeks, whether diagnosis is getting faster and fixes
are holding.
"""

from __future__ import annotations

import json
import re
import sqlite3
import statistics
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Iterable, Literal

from agentdeck.diagnose.fingerprint import fingerprint, signature, similarity
from agentdeck.diagnose.framework import CATEGORIES, CATEGORY_KEYS, CategoryKey, parse_category
from agentdeck.errors import AgentdeckError

Outcome = Literal["pending", "stuck", "recurred"]
OUTCOMES: tuple[Outcome, ...] = ("pending", "stuck", "recurred")
SOURCES = ("cli", "wizard", "console", "request", "flaky")
MAX_ERROR_CHARS = 4000


class LogError(AgentdeckError):
    """Bad input to the diagnosis log (empty error, unknown entry, bad outcome)."""


@dataclass
class Entry:
    id: int
    ts: float
    error: str
    category: CategoryKey
    also: list[CategoryKey]
    root_cause: str
    fix: str
    fix_ids: list[str]
    verification: str
    result: str
    outcome: Outcome
    outcome_ts: float | None
    diagnose_seconds: float | None
    suggested: str | None
    suggested_confidence: float | None
    fingerprint: str
    signature: str
    recurrence_of: int | None
    source: str
    recurred_by: list[int] = field(default_factory=list)

    @property
    def date(self) -> str:
        return datetime.fromtimestamp(self.ts).strftime("%Y-%m-%d")

    @property
    def root_cause_label(self) -> str:
        """"Rules Problem (CLAUDE.md didn't specify hashing)", as the seed's log writes it."""
        label = CATEGORIES[self.category].label
        if self.root_cause:
            label += f" ({self.root_cause})"
        if self.also:
            label += "; also " + ", ".join(CATEGORIES[c].label for c in self.also)
        return label

    @property
    def result_label(self) -> str:
        text = self.result.strip()
        if self.outcome == "stuck":
            return text if text[:1] in ("✓", "✔") else ("✓ " + (text or "Stuck")).strip()
        if self.outcome == "recurred":
            if text[:1] in ("✗", "✘"):
                return text
            where = ", ".join(f"#{i}" for i in self.recurred_by)
            base = "✗ Recurred" + (f" ({where})" if where else "")
            return f"{base}: {text}" if text else base
        return text or "Pending"

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["date"] = self.date
        d["root_cause_label"] = self.root_cause_label
        d["result_label"] = self.result_label
        return d


_STUCK = re.compile(r"(?:stuck|yes|fixed|held|holds|ok|resolved|confirmed)\b")
_RECURRED = re.compile(r"(?:recurred|recurs|recurring|failed|regressed|again|came back|did ?n[o']t stick|did not stick|not stuck)\b")


def infer_outcome(result: str) -> Outcome:
    """Read "did the fix stick?" from free text: "✓ ..." / "stuck" / "yes" versus "✗" / "recurred" / "no"."""
    t = result.strip().lower()
    if not t:
        return "pending"
    if t[0] in "✗✘" or _RECURRED.match(t):
        return "recurred"
    if t[0] in "✓✔" or _STUCK.match(t):
        return "stuck"
    return "pending"


def _row_to_entry(row: sqlite3.Row, recurred_by: list[int] | None = None) -> Entry:
    return Entry(
        id=row["id"], ts=row["ts"], error=row["error"], category=row["category"],
        also=json.loads(row["also"]), root_cause=row["root_cause"], fix=row["fix"],
        fix_ids=json.loads(row["fix_ids"]), verification=row["verification"], result=row["result"],
        outcome=row["outcome"], outcome_ts=row["outcome_ts"], diagnose_seconds=row["diagnose_seconds"],
        suggested=row["suggested"], suggested_confidence=row["suggested_confidence"],
        fingerprint=row["fingerprint"], signature=row["signature"], recurrence_of=row["recurrence_of"],
        source=row["source"], recurred_by=recurred_by or [],
    )


def find_similar(conn: sqlite3.Connection, error: str, before_ts: float | None = None) -> sqlite3.Row | None:
    """The most recent earlier entry describing the same error (equal fingerprint or similar words)."""
    sig, fp = signature(error), fingerprint(error)
    q = "SELECT * FROM diagnoses" + (" WHERE ts <= ?" if before_ts is not None else "") + " ORDER BY ts DESC, id DESC"
    for row in conn.execute(q, (before_ts,) if before_ts is not None else ()):
        if row["fingerprint"] == fp or similarity(sig, row["signature"]).similar:
            return row
    return None


def record(
    conn: sqlite3.Connection,
    *,
    error: str,
    category: str,
    fix: str,
    verification: str = "",
    result: str = "",
    also: Iterable[str] = (),
    root_cause: str = "",
    fix_ids: Iterable[str] = (),
    diagnose_seconds: float | None = None,
    suggested: str | None = None,
    suggested_confidence: float | None = None,
    source: str = "cli",
    ts: float | None = None,
) -> Entry:
    """Save one diagnosis. A similar earlier error means that earlier fix did not stick: mark it recurred."""
    error = error.strip()
    if not error:
        raise LogError("the error description is empty; say what went wrong (e.g. --error 'used hard delete')")
    if len(error) > MAX_ERROR_CHARS:
        error = error[:MAX_ERROR_CHARS]
    cat = parse_category(category)
    fix = fix.strip()
    if not fix:
        raise LogError("the fix is empty; say what was changed (e.g. --fix 'added soft-delete rule to CLAUDE.md')")
    also_keys = [k for k in dict.fromkeys(parse_category(a) for a in also) if k != cat]
    if source not in SOURCES:
        raise LogError(f"unknown source {source!r}; use one of: {', '.join(SOURCES)}")
    now = time.time() if ts is None else ts
    outcome = infer_outcome(result)
    previous = find_similar(conn, error, before_ts=now)
    with conn:
        cur = conn.execute(
            "INSERT INTO diagnoses (ts, error, category, also, root_cause, fix, fix_ids, verification, result,"
            " outcome, outcome_ts, diagnose_seconds, suggested, suggested_confidence, fingerprint, signature,"
            " recurrence_of, source) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                now, error, cat, json.dumps(also_keys), root_cause.strip(), fix, json.dumps(list(fix_ids)),
                verification.strip(), result.strip(), outcome, now if outcome != "pending" else None,
                diagnose_seconds, suggested, suggested_confidence, fingerprint(error), signature(error),
                previous["id"] if previous is not None else None, source,
            ),
        )
        new_id = int(cur.lastrowid or 0)
        if previous is not None:
            conn.execute("UPDATE diagnoses SET outcome = 'recurred', outcome_ts = ? WHERE id = ?", (now, previous["id"]))
    return get(conn, new_id)


def set_outcome(conn: sqlite3.Connection, entry_id: int, outcome: str, note: str | None = None) -> Entry:
    """Record later whether the fix stuck; a note replaces the result text."""
    if outcome not in OUTCOMES:
        raise LogError(f"unknown result {outcome!r}; use stuck, recurred or pending")
    get(conn, entry_id)
    with conn:
        if note is not None:
            conn.execute("UPDATE diagnoses SET outcome = ?, outcome_ts = ?, result = ? WHERE id = ?",
                         (outcome, time.time(), note.strip(), entry_id))
        else:
            conn.execute("UPDATE diagnoses SET outcome = ?, outcome_ts = ? WHERE id = ?", (outcome, time.time(), entry_id))
    return get(conn, entry_id)


def _recurrers(conn: sqlite3.Connection) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for r in conn.execute("SELECT id, recurrence_of FROM diagnoses WHERE recurrence_of IS NOT NULL ORDER BY id"):
        out.setdefault(r["recurrence_of"], []).append(r["id"])
    return out


def get(conn: sqlite3.Connection, entry_id: int) -> Entry:
    row = conn.execute("SELECT * FROM diagnoses WHERE id = ?", (entry_id,)).fetchone()
    if row is None:
        raise LogError(f"no diagnosis #{entry_id}; see `agentdeck diagnose list`")
    by = [r[0] for r in conn.execute("SELECT id FROM diagnoses WHERE recurrence_of = ? ORDER BY id", (entry_id,))]
    return _row_to_entry(row, by)


def entries(
    conn: sqlite3.Connection, *, category: str | None = None, limit: int | None = None, newest_first: bool = False
) -> list[Entry]:
    q = "SELECT * FROM diagnoses"
    params: list[Any] = []
    if category is not None:
        q += " WHERE category = ?"
        params.append(parse_category(category))
    q += " ORDER BY ts DESC, id DESC" if newest_first else " ORDER BY ts, id"
    if limit is not None:
        q += " LIMIT ?"
        params.append(int(limit))
    by = _recurrers(conn)
    return [_row_to_entry(r, by.get(r["id"])) for r in conn.execute(q, params)]


def _period_key(ts: float, period: str) -> str:
    d = datetime.fromtimestamp(ts)
    if period == "day":
        return d.strftime("%Y-%m-%d")
    if period == "month":
        return d.strftime("%Y-%m")
    iso = d.isocalendar()
    return f"{iso.year}-W{iso.week:02d}"


def stats(conn: sqlite3.Connection, period: Literal["day", "week", "month"] = "week") -> dict[str, Any]:
    """Errors by category over time, recurrence rate, time to diagnose, and how often the suggester was right.

    Recurrence rate = fixes that recurred / fixes whose outcome is known (stuck + recurred): the
    share of diagnosed root causes that were not really removed.
    """
    if period not in ("day", "week", "month"):
        raise LogError(f"unknown period {period!r}; use day, week or month")
    all_entries = entries(conn)
    by_category = {k: 0 for k in CATEGORY_KEYS}
    over_time: dict[str, dict[str, int]] = {}
    for e in all_entries:
        by_category[e.category] += 1
        bucket = over_time.setdefault(_period_key(e.ts, period), {k: 0 for k in CATEGORY_KEYS})
        bucket[e.category] += 1
    outcomes = {o: sum(1 for e in all_entries if e.outcome == o) for o in OUTCOMES}
    decided = outcomes["stuck"] + outcomes["recurred"]
    timed = [e for e in all_entries if e.diagnose_seconds is not None]

    def _summary(values: list[float]) -> dict[str, float | int | None]:
        return {
            "count": len(values),
            "median_s": round(statistics.median(values), 1) if values else None,
            "mean_s": round(statistics.fmean(values), 1) if values else None,
        }

    ttd = _summary([e.diagnose_seconds for e in timed if e.diagnose_seconds is not None])
    ttd["by_category"] = {  # type: ignore[assignment]
        k: _summary([e.diagnose_seconds for e in timed if e.category == k and e.diagnose_seconds is not None])
        for k in CATEGORY_KEYS
    }
    suggested = [e for e in all_entries if e.suggested]
    return {
        "total": len(all_entries),
        "by_category": by_category,
        "period": period,
        "over_time": dict(sorted(over_time.items())),
        "outcomes": outcomes,
        "recurrence_rate": round(outcomes["recurred"] / decided, 3) if decided else None,
        "recurrences_logged": sum(1 for e in all_entries if e.recurrence_of is not None),
        "time_to_diagnose": ttd,
        "suggester_agreement": (
            round(sum(1 for e in suggested if e.suggested == e.category) / len(suggested), 3) if suggested else None
        ),
    }


def _cell(text: str) -> str:
    return " ".join(text.replace("|", "\\|").split()) or "-"


def export_markdown(items: list[Entry], figures: dict[str, Any] | None = None) -> str:
    """The seed's error diagnostic log: a table of every entry, then each entry in the seed's field format."""
    lines = ["# Error Diagnostic Log", ""]
    lines.append("| Date | Error | Root Cause | Fix Applied | Verification | Result |")
    lines.append("|---|---|---|---|---|---|")
    for e in items:
        lines.append("| " + " | ".join(_cell(v) for v in (
            e.date, e.error, e.root_cause_label, e.fix, e.verification, e.result_label)) + " |")
    if items:
        lines += ["", "## Entries"]
    for e in items:
        lines += [
            "",
            f"### #{e.id}",
            "",
            f"**Date**: {e.date}",
            f"**Error**: {e.error}",
            f"**Root Cause**: {e.root_cause_label}",
            f"**Fix Applied**: {e.fix}",
            f"**Verification**: {e.verification or '-'}",
            f"**Result**: {e.result_label}",
        ]
        if e.recurrence_of is not None:
            lines.append(f"**Recurrence of**: #{e.recurrence_of}")
    if figures is not None and figures["total"]:
        rate = figures["recurrence_rate"]
        ttd = figures["time_to_diagnose"]
        lines += ["", "## Figures", ""]
        lines.append("- Errors by category: " + ", ".join(
            f"{CATEGORIES[k].title} {n}" for k, n in figures["by_category"].items()))
        lines.append(f"- Recurrence rate: {'n/a' if rate is None else f'{rate:.0%}'} "
                     f"({figures['outcomes']['recurred']} recurred, {figures['outcomes']['stuck']} stuck, "
                     f"{figures['outcomes']['pending']} pending)")
        if ttd["count"]:
            lines.append(f"- Time to diagnose: median {ttd['median_s']} s over {ttd['count']} timed diagnoses")
    return "\n".join(lines) + "\n"


def export_json(items: list[Entry], figures: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"entries": [e.to_json() for e in items]}
    if figures is not None:
        out["stats"] = figures
    return out
