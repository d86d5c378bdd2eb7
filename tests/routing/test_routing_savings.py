"""Savings arithmetic against rows in a real SQLite database, and the live tracker."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from agentdeck.routing.savings import (
    SavingsTracker, escalation_reasons, load_report, parse_since, rule_family, start_tier,
)
from agentdeck.store import connect, db_path

PRICE_PER_MTOK = {"fast": 0.25, "balanced": 3.0, "smart": 15.0}  # the seed's 4.7.3 prices
NOW = 1_800_000_000.0


def insert(conn, i: int, ts: float, tier: str | None, rule: str, tokens: int, cost: float, baseline: float,
           escalations: list[str] | None = None, status: int = 200) -> None:
    conn.execute(
        "INSERT INTO requests (id, ts, key, protocol, endpoint, model_requested, model, provider, tier, rule, status,"
        " stream, input_tokens, output_tokens, cost_usd, baseline_cost_usd, escalations)"
        " VALUES (?, ?, 'dev', 'anthropic', '/v1/messages', 'auto', 'm', 'anthropic', ?, ?, ?, 0, ?, ?, ?, ?, ?)",
        (f"r{i}", ts, tier, rule, status, tokens - tokens // 5, tokens // 5, cost, baseline,
         json.dumps(escalations) if escalations is not None else None),
    )


@pytest.fixture
def conn(tmp_path: Path):
    c = connect(db_path(tmp_path / "data"))
    yield c
    c.close()


def test_the_seeds_cost_projection_is_reproduced(conn) -> None:
    """Seed 4.7.3: 100 requests/day of 5K tokens, 60/30/10 -> $1.275/day, $28.05/month vs $33 (15%)."""
    i = 0
    for tier, n in (("fast", 60), ("balanced", 30), ("smart", 10)):
        for _ in range(n):
            cost = 5000 * PRICE_PER_MTOK[tier] / 1e6
            insert(conn, i, NOW - 3600 - i, tier, "search" if tier == "fast" else "feature", 5000, cost, 5000 * 3.0 / 1e6)
            i += 1
    insert(conn, 999, NOW - 2 * 86400, "smart", "design", 5000, 1.0, 1.0)  # outside the window
    conn.commit()
    report = load_report(conn, since=NOW - 86400, until=NOW)
    assert report.requests == 100
    assert report.cost_usd == pytest.approx(1.275)
    assert report.baseline_usd == pytest.approx(1.5)
    assert report.savings_usd == pytest.approx(0.225)
    assert report.savings_pct == pytest.approx(0.15)
    proj = report.projection(work_days=22)
    assert proj.days_observed == pytest.approx(1.0)
    assert proj.cost_per_month == pytest.approx(28.05)
    assert proj.baseline_per_month == pytest.approx(33.0)
    assert proj.savings_per_month == pytest.approx(4.95)
    by_tier = {line.tier: line for line in proj.lines}
    assert by_tier["fast"].requests_per_day == pytest.approx(60)
    assert by_tier["fast"].cost_per_day == pytest.approx(0.075)
    assert by_tier["balanced"].cost_per_day == pytest.approx(0.45)
    assert by_tier["smart"].cost_per_day == pytest.approx(0.75)
    assert by_tier["smart"].tokens_per_request == pytest.approx(5000)
    # A 12-hour window projects the same day at twice the rate.
    half = load_report(conn, since=NOW - 43200, until=NOW)
    assert half.projection().cost_per_day == pytest.approx(2 * 1.275)


def test_escalation_rates_by_starting_tier_and_by_rule(conn) -> None:
    rows = [
        # (tier recorded = final tier, rule, escalations)
        ("fast", "search", []), ("fast", "search", []), ("fast", "search", []),
        ("balanced", "search+escalate", ["fast->balanced: truncated"]),
        ("fast", "typo", []),
        ("smart", "single-file+escalate", ["fast->balanced: invalid-json", "balanced->smart: invalid-json"]),
        ("balanced", "multi-file:3", []), ("balanced", "multi-file:4", []),
        ("smart", "multi-file:2+escalate", ["balanced->smart: empty"]),
        ("smart", "design", []),
        (None, "explicit", []),
    ]
    for i, (tier, rule, esc) in enumerate(rows):
        insert(conn, i, NOW - 60, tier, rule, 1000, 0.01, 0.02, esc)
    conn.commit()
    r = load_report(conn, since=None, until=NOW)
    assert r.requests == 11 and r.escalated == 3
    assert r.escalation_rate == pytest.approx(3 / 11)
    tiers = {t.tier: t for t in r.ordered_tiers()}
    assert [t.tier for t in r.ordered_tiers()] == ["fast", "balanced", "smart", "(none)"]
    assert (tiers["fast"].requests, tiers["fast"].started, tiers["fast"].escalated) == (4, 6, 2)
    assert tiers["fast"].escalation_rate == pytest.approx(2 / 6)
    assert (tiers["balanced"].requests, tiers["balanced"].started, tiers["balanced"].escalated) == (3, 3, 1)
    assert (tiers["smart"].requests, tiers["smart"].started, tiers["smart"].escalated) == (3, 1, 0)
    rules = {x.rule: x for x in r.rules_by_escalation()}
    assert (rules["search"].requests, rules["search"].escalated) == (4, 1)
    assert rules["single-file"].escalation_rate == 1.0
    assert rules["single-file"].reasons == {"invalid-json": 2}
    assert (rules["multi-file"].requests, rules["multi-file"].escalated) == (3, 1)
    assert r.rules_by_escalation()[0].rule == "single-file"
    assert r.reasons == {"truncated": 1, "invalid-json": 2, "empty": 1}
    assert r.savings_usd == pytest.approx(11 * 0.01)
    d = r.to_dict()
    assert d["requests"] == 11 and d["savings_pct"] == 0.5 and d["rules"][0]["rule"] == "single-file"


def test_empty_window_is_all_zeros(conn) -> None:
    r = load_report(conn, since=NOW - 3600, until=NOW)
    assert (r.requests, r.cost_usd, r.savings_pct, r.escalation_rate) == (0, 0.0, 0.0, 0.0)
    assert r.projection().cost_per_month == 0.0 and r.to_dict()["tiers"] == []


def test_helpers() -> None:
    assert rule_family("multi-file:3+escalate") == "multi-file"
    assert rule_family("design+downgrade") == "design+downgrade"
    assert rule_family(None) == "(none)"
    assert start_tier("smart", 2) == "fast" and start_tier("balanced", 0) == "balanced" and start_tier(None, 1) is None
    assert escalation_reasons('["fast->balanced: truncated", {"reason": "empty"}, "invalid-json"]') == ["truncated", "empty", "invalid-json"]
    assert escalation_reasons(None) == [] and escalation_reasons("[]") == []
    assert parse_since("24h", now=NOW) == NOW - 86400
    assert parse_since("90m", now=NOW) == NOW - 5400
    assert parse_since("2w", now=NOW) == NOW - 14 * 86400
    assert parse_since("all") is None
    with pytest.raises(ValueError, match="--since"):
        parse_since("yesterday")


def test_live_tracker_snapshot() -> None:
    t = SavingsTracker()
    t.record("fast", "search", 0.001, 0.012, tokens=4000)
    t.record("balanced", "search+escalate", 0.02, 0.02, ["fast->balanced: truncated"])
    t.record("smart", "design", 0.10, 0.03)
    s = t.snapshot()
    assert s["requests"] == 3
    assert s["cost_usd"] == pytest.approx(0.121) and s["baseline_usd"] == pytest.approx(0.062)
    assert s["savings_usd"] == pytest.approx(-0.059)  # smart work costs more than the baseline: shown, not hidden
    assert s["tiers"]["fast"]["escalated"] == 1 and s["escalations"] == {"truncated": 1}
    assert t.savings_usd == pytest.approx(-0.059)
    assert time.time() - t.report.since < 60
