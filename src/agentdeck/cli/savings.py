"""`agentdeck savings`: what tier routing saved against running everything on the balanced tier."""

from __future__ import annotations

import argparse
import json
from typing import Any


def register(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("savings", parents=parents,
                       help="cost per tier against the all-balanced baseline, escalation rates, monthly projection")
    p.add_argument("--since", default="24h", metavar="DUR", help="window: 90m, 24h, 7d, 2w or 'all' (default: 24h)")
    p.add_argument("--work-days", type=int, default=22, metavar="N", help="work days in the monthly projection (default: 22, a working month)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=run)


def _usd(x: float) -> str:
    """Dollars, with four decimals below $1 (one request on the fast tier costs fractions of a cent)."""
    sign = "-" if x < 0 else ""
    x = abs(x)
    if x == 0 or x >= 1:
        return f"{sign}${x:,.2f}"
    return f"{sign}${x:,.4f}"


def _pct(x: float) -> str:
    return f"{x:.0%}" if x == 0 or abs(x) >= 0.01 else f"{x:.1%}"


def run(args: argparse.Namespace) -> int:
    from agentdeck.cli.common import config_from
    from agentdeck.errors import AgentdeckError
    from agentdeck.routing.savings import SavingsReport, load_report, parse_since
    from agentdeck.store import connect, db_path

    try:
        since = parse_since(args.since)
    except ValueError as e:
        raise AgentdeckError(str(e)) from None
    if not 1 <= args.work_days <= 31:
        raise AgentdeckError("--work-days must be between 1 and 31")
    cfg = config_from(args)
    path = db_path(cfg.gateway.data_dir)
    if path.exists():
        conn = connect(path)
        try:
            report = load_report(conn, since)
        finally:
            conn.close()
    else:
        import time

        report = SavingsReport(since, time.time())
    if args.json:
        print(json.dumps(report.to_dict(args.work_days), indent=2))
        return 0
    _print(report, args.since, args.work_days, str(path), path.exists())
    return 0


def _print(report: Any, since_label: str, work_days: int, path: str, exists: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    window = "all time" if since_label.strip().lower() == "all" else f"last {since_label.strip()}"
    if report.requests == 0:
        where = path if exists else f"{path} (not created yet: run `agentdeck serve` or `agentdeck demo` first)"
        console.print(f"No requests in the {window}. Database: {where}")
        return

    tiers = Table(title=f"Routing savings, {window}: real cost vs. everything on the balanced tier", title_justify="left")
    for col in ("tier", "requests", "share", "tokens/req", "cost", "baseline", "savings", "escalated"):
        tiers.add_column(col, justify="left" if col == "tier" else "right")
    for t in report.ordered_tiers():
        esc = f"{t.escalated}/{t.started} ({_pct(t.escalation_rate)})" if t.started else "-"
        tiers.add_row(t.tier, f"{t.requests:,}", _pct(t.requests / report.requests),
                      f"{t.tokens / t.requests:,.0f}" if t.requests else "-",
                      _usd(t.cost_usd), _usd(t.baseline_usd), _usd(t.savings_usd), esc)
    tiers.add_section()
    tiers.add_row("total", f"{report.requests:,}", "100%", "", _usd(report.cost_usd), _usd(report.baseline_usd),
                  f"{_usd(report.savings_usd)} ({_pct(report.savings_pct)})",
                  f"{report.escalated} ({_pct(report.escalation_rate)})")
    console.print(tiers)

    rules = Table(title="Escalation rate by rule (tighten the ones at the top)", title_justify="left")
    for col in ("rule", "requests", "escalated", "rate", "reasons"):
        rules.add_column(col, justify="left" if col in ("rule", "reasons") else "right")
    for r in report.rules_by_escalation():
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(r.reasons.items(), key=lambda kv: -kv[1])) or "-"
        rules.add_row(r.rule, f"{r.requests:,}", f"{r.escalated:,}", _pct(r.escalation_rate), reasons)
    console.print(rules)

    proj = report.projection(work_days)
    table = Table(title=f"Projection at the observed rate: {work_days} work days a month ({proj.days_observed:.2f} days observed)",
                  title_justify="left")
    for col in ("tier", "requests/day", "tokens/req", "cost/day", "cost/month"):
        table.add_column(col, justify="left" if col == "tier" else "right")
    for line in proj.lines:
        table.add_row(line.tier, f"{line.requests_per_day:,.1f}", f"{line.tokens_per_request:,.0f}",
                      _usd(line.cost_per_day), _usd(line.cost_per_month))
    table.add_section()
    table.add_row("total", f"{report.requests / proj.days_observed:,.1f}", "", _usd(proj.cost_per_day), _usd(proj.cost_per_month))
    table.add_row("100% balanced", "", "", _usd(proj.baseline_per_day), _usd(proj.baseline_per_month))
    console.print(table)
    pct = proj.savings_per_month / proj.baseline_per_month if proj.baseline_per_month > 0 else 0.0
    console.print(f"Savings: {_usd(proj.savings_per_month)}/month ({_pct(pct)} reduction)")
