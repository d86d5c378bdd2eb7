"""What routing saved: real cost beside the baseline of running everything on the balanced tier.

The seed's baseline is "100% Sonnet"; the gateway records, with every request, its real
cost and the cost of the same tokens on the balanced tier's model (`baseline_cost_usd`).
This module sums those, per tier and per rule, counts escalations (which rules send work
to a tier that cannot do it: the ones to tighten), and projects a month at the observed
rate the way the seed's cost projection does (requests/day x cost, 22 work days).

`SavingsTracker` is the live, in-memory version for /admin/status and /metrics;
`load_report` reads the `requests` table for `agentdeck savings`.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable

from agentdeck.config import TIERS

WORK_DAYS_PER_MONTH = 22
NO_TIER = "(none)"
_COUNT_SUFFIX = re.compile(r":\d+")
_ARROW = re.compile(r"^\s*[\w()-]+\s*->\s*[\w()-]+\s*:\s*(.+)$")


def rule_family(rule: str | None) -> str:
    """`multi-file:3+escalate` -> `multi-file`: one line per rule, whatever the count or suffix."""
    if not rule:
        return NO_TIER
    base = rule.split("+escalate", 1)[0]
    return _COUNT_SUFFIX.sub("", base)


def escalation_reasons(raw: Any) -> list[str]:
    """The `escalations` column as reasons: a JSON list of reasons, of "fast->balanced: reason"
    strings, or of {"reason": ...} objects."""
    if raw is None or raw == "":
        return []
    if isinstance(raw, (str, bytes)):
        try:
            raw = json.loads(raw)
        except ValueError:
            return [str(raw)]
    if not isinstance(raw, list):
        return []
    out = []
    for item in raw:
        if isinstance(item, dict):
            out.append(str(item.get("reason") or item.get("problem") or "unknown"))
        elif item is not None:
            m = _ARROW.match(str(item))  # the gateway writes "fast->balanced: truncated"
            out.append(m.group(1) if m else str(item))
    return out


def start_tier(final_tier: str | None, escalations: int) -> str | None:
    """The tier a request was first sent to: its recorded (final) tier, `escalations` steps down."""
    if final_tier not in TIERS:
        return final_tier
    return TIERS[max(TIERS.index(final_tier) - escalations, 0)]


@dataclass
class TierLine:
    tier: str
    requests: int = 0
    cost_usd: float = 0.0
    baseline_usd: float = 0.0
    tokens: int = 0
    started: int = 0      # requests first sent to this tier
    escalated: int = 0    # ... of which were re-asked a tier up

    @property
    def savings_usd(self) -> float:
        return self.baseline_usd - self.cost_usd

    @property
    def escalation_rate(self) -> float:
        return self.escalated / self.started if self.started else 0.0


@dataclass
class RuleLine:
    rule: str
    requests: int = 0
    escalated: int = 0
    cost_usd: float = 0.0
    reasons: dict[str, int] = field(default_factory=dict)

    @property
    def escalation_rate(self) -> float:
        return self.escalated / self.requests if self.requests else 0.0


@dataclass
class ProjectionLine:
    tier: str
    requests_per_day: float
    tokens_per_request: float
    cost_per_day: float
    cost_per_month: float


@dataclass
class Projection:
    days_observed: float
    work_days: int
    lines: list[ProjectionLine]
    cost_per_day: float
    cost_per_month: float
    baseline_per_day: float
    baseline_per_month: float

    @property
    def savings_per_month(self) -> float:
        return self.baseline_per_month - self.cost_per_month


@dataclass
class SavingsReport:
    since: float | None
    until: float
    tiers: dict[str, TierLine] = field(default_factory=dict)
    rules: dict[str, RuleLine] = field(default_factory=dict)
    reasons: dict[str, int] = field(default_factory=dict)
    first_ts: float | None = None

    # -- totals ---------------------------------------------------------------------------
    @property
    def requests(self) -> int:
        return sum(t.requests for t in self.tiers.values())

    @property
    def cost_usd(self) -> float:
        return sum(t.cost_usd for t in self.tiers.values())

    @property
    def baseline_usd(self) -> float:
        return sum(t.baseline_usd for t in self.tiers.values())

    @property
    def savings_usd(self) -> float:
        return self.baseline_usd - self.cost_usd

    @property
    def savings_pct(self) -> float:
        """Savings as a share of the baseline (0.44 = the seed's "44% reduction")."""
        return self.savings_usd / self.baseline_usd if self.baseline_usd > 0 else 0.0

    @property
    def escalated(self) -> int:
        return sum(t.escalated for t in self.tiers.values())

    @property
    def escalation_rate(self) -> float:
        return self.escalated / self.requests if self.requests else 0.0

    def ordered_tiers(self) -> list[TierLine]:
        order = {t: i for i, t in enumerate((*TIERS, NO_TIER))}
        return sorted(self.tiers.values(), key=lambda t: order.get(t.tier, len(order)))

    # -- building ---------------------------------------------------------------------------
    def add(self, tier: str | None, rule: str | None, cost_usd: float, baseline_usd: float,
            escalations: Iterable[str] = (), tokens: int = 0, count: int = 1) -> None:
        """Count `count` requests that ended on `tier` with the same rule and escalation history."""
        reasons = list(escalations)
        name = tier or NO_TIER
        line = self.tiers.setdefault(name, TierLine(name))
        line.requests += count
        line.cost_usd += cost_usd
        line.baseline_usd += baseline_usd
        line.tokens += tokens
        first = start_tier(tier, len(reasons)) or NO_TIER
        origin = self.tiers.setdefault(first, TierLine(first))
        origin.started += count
        if reasons:
            origin.escalated += count
        r = self.rules.setdefault(rule_family(rule), RuleLine(rule_family(rule)))
        r.requests += count
        r.cost_usd += cost_usd
        if reasons:
            r.escalated += count
            for reason in reasons:
                r.reasons[reason] = r.reasons.get(reason, 0) + count
                self.reasons[reason] = self.reasons.get(reason, 0) + count

    # -- the seed's cost projection ------------------------------------------------------------
    def days_observed(self) -> float:
        start = self.since if self.since is not None else self.first_ts
        if start is None:
            return 0.0
        return max(self.until - start, 3600.0) / 86400.0

    def projection(self, work_days: int = WORK_DAYS_PER_MONTH) -> Projection:
        """Requests/day and cost/day per tier at the observed rate, times `work_days` (seed: 22)."""
        days = self.days_observed()
        lines = []
        for t in self.ordered_tiers():
            if t.requests == 0:
                continue
            per_day = t.cost_usd / days if days else 0.0
            lines.append(ProjectionLine(
                t.tier, t.requests / days if days else 0.0, t.tokens / t.requests, per_day, per_day * work_days))
        cost_day = self.cost_usd / days if days else 0.0
        base_day = self.baseline_usd / days if days else 0.0
        return Projection(days, work_days, lines, cost_day, cost_day * work_days, base_day, base_day * work_days)

    def to_dict(self, work_days: int = WORK_DAYS_PER_MONTH) -> dict[str, Any]:
        proj = self.projection(work_days)
        return {
            "since": self.since,
            "until": self.until,
            "requests": self.requests,
            "cost_usd": round(self.cost_usd, 6),
            "baseline_usd": round(self.baseline_usd, 6),
            "savings_usd": round(self.savings_usd, 6),
            "savings_pct": round(self.savings_pct, 4),
            "escalation_rate": round(self.escalation_rate, 4),
            "tiers": [
                {"tier": t.tier, "requests": t.requests, "share": round(t.requests / self.requests, 4) if self.requests else 0.0,
                 "cost_usd": round(t.cost_usd, 6), "baseline_usd": round(t.baseline_usd, 6),
                 "savings_usd": round(t.savings_usd, 6), "tokens": t.tokens, "started": t.started,
                 "escalated": t.escalated, "escalation_rate": round(t.escalation_rate, 4)}
                for t in self.ordered_tiers()
            ],
            "rules": [
                {"rule": r.rule, "requests": r.requests, "escalated": r.escalated,
                 "escalation_rate": round(r.escalation_rate, 4), "reasons": dict(r.reasons), "cost_usd": round(r.cost_usd, 6)}
                for r in self.rules_by_escalation()
            ],
            "escalation_reasons": dict(self.reasons),
            "projection": {
                "days_observed": round(proj.days_observed, 4),
                "work_days": proj.work_days,
                "tiers": [asdict(line) for line in proj.lines],
                "cost_per_day": round(proj.cost_per_day, 6),
                "cost_per_month": round(proj.cost_per_month, 6),
                "baseline_per_day": round(proj.baseline_per_day, 6),
                "baseline_per_month": round(proj.baseline_per_month, 6),
                "savings_per_month": round(proj.savings_per_month, 6),
            },
        }

    def rules_by_escalation(self) -> list[RuleLine]:
        """Rules with the most escalations first: the ones to tighten."""
        return sorted(self.rules.values(), key=lambda r: (-r.escalation_rate, -r.escalated, -r.requests, r.rule))


def load_report(conn: sqlite3.Connection, since: float | None, until: float | None = None) -> SavingsReport:
    """Sum the `requests` table between `since` (None = everything) and `until` (default now)."""
    until = time.time() if until is None else until
    lo = since if since is not None else float("-inf")
    report = SavingsReport(since, until)
    rows = conn.execute(
        "SELECT tier, rule, escalations, COUNT(*), SUM(cost_usd), SUM(baseline_cost_usd),"
        " SUM(input_tokens + output_tokens + cache_read_tokens + cache_write_tokens), MIN(ts)"
        " FROM requests WHERE ts >= ? AND ts <= ? GROUP BY tier, rule, escalations",
        (lo, until),
    ).fetchall()
    for tier, rule, esc, n, cost, base, tokens, first in rows:
        report.add(tier, rule, cost or 0.0, base or 0.0, escalation_reasons(esc), int(tokens or 0), int(n))
        if first is not None and (report.first_ts is None or first < report.first_ts):
            report.first_ts = first
    return report


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$", re.I)
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_since(value: str, now: float | None = None) -> float | None:
    """`24h`, `90m`, `7d`, `2w`, `30s` -> a timestamp that long ago; `all` -> None. ValueError otherwise."""
    if value.strip().lower() == "all":
        return None
    m = _DURATION.match(value)
    if not m:
        raise ValueError(f"--since: expected a duration like 24h, 90m, 7d or 'all', got {value!r}")
    now = time.time() if now is None else now
    return now - float(m.group(1)) * _UNIT_S[m.group(2).lower()]


class SavingsTracker:
    """Live totals since the gateway started, for /admin/status and /metrics (O(1) per request)."""

    def __init__(self) -> None:
        self.report = SavingsReport(since=time.time(), until=time.time())

    def record(self, tier: str | None, rule: str | None, cost_usd: float, baseline_usd: float,
               escalations: Iterable[str] = (), tokens: int = 0) -> None:
        self.report.add(tier, rule, cost_usd, baseline_usd, escalation_reasons(list(escalations)), tokens)
        self.report.until = time.time()

    @property
    def savings_usd(self) -> float:
        return self.report.savings_usd

    def snapshot(self) -> dict[str, Any]:
        """The `routing` block of /admin/status: totals, per tier, escalations by reason."""
        r = self.report
        return {
            "requests": r.requests,
            "cost_usd": round(r.cost_usd, 6),
            "baseline_usd": round(r.baseline_usd, 6),
            "savings_usd": round(r.savings_usd, 6),
            "savings_pct": round(r.savings_pct, 4),
            "escalation_rate": round(r.escalation_rate, 4),
            "tiers": {t.tier: {"requests": t.requests, "cost_usd": round(t.cost_usd, 6),
                               "baseline_usd": round(t.baseline_usd, 6), "escalated": t.escalated}
                      for t in r.ordered_tiers()},
            "escalations": dict(r.reasons),
        }
