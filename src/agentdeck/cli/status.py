"""`agentdeck status [--json]`: is the gateway live or stopped, what has been spent, how close to the limits.

Why a compact human view by default: it is what an on-call engineer types first at 3 a.m.;
`--json` gives the full /admin/status document for scripts.
"""

from __future__ import annotations

import argparse
import json
from typing import Any


MAX_KEYS = 6


def register(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("status", parents=parents, help="state of the running gateway (kill switch, spend, budgets, limits)")
    p.add_argument("--json", action="store_true", help="print the /admin/status JSON as is")
    p.add_argument("--url", metavar="U", help="gateway URL (default: the local gateway, then the config's host:port)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from agentdeck.cli.common import admin_request, config_from, gateway_target

    url, token = gateway_target(config_from(args), args.url)
    st = admin_request(url, token, "GET", "/admin/status")
    if args.json:
        print(json.dumps(st, indent=2, sort_keys=True))
    else:
        print(render(url, st))
    return 0


def _money(v: Any) -> str:
    from agentdeck.budget.ledger import usd

    try:
        return usd(float(v))
    except (TypeError, ValueError):
        return "-"


def _of(spent: Any, limit: Any) -> str:
    try:
        s, lim = float(spent), float(limit)
    except (TypeError, ValueError):
        return _money(spent)
    if lim <= 0:
        return f"{_money(s)} (no limit)"
    return f"{_money(s)} / {_money(lim)} ({s / lim:.0%})"


def _dur(seconds: Any) -> str:
    try:
        s = int(float(seconds))
    except (TypeError, ValueError):
        return "?"
    h, rem = divmod(s, 3600)
    return f"{h}h{rem // 60:02d}m" if h else f"{rem // 60}m{rem % 60:02d}s"


def render(url: str, st: dict[str, Any]) -> str:
    """The human view: a few aligned lines, the state first."""
    lines = []
    state = "STOPPED" if st.get("stopped") else "LIVE"
    extra = []
    if "uptime_s" in st:
        extra.append(f"up {_dur(st['uptime_s'])}")
    if "in_flight" in st:
        extra.append(f"{st['in_flight']} in flight")
    lines.append(f"{state:<8} {url}" + (f"  ({', '.join(extra)})" if extra else ""))
    if st.get("stopped"):
        lines.append(f"{'reason':<8} {st.get('stop_reason') or '-'}  (lift with `agentdeck resume`)")
    stopped_keys = st.get("stopped_keys") or {}
    if stopped_keys:
        lines.append(f"{'stopped':<8} " + "; ".join(f"{k}: {v}" for k, v in sorted(stopped_keys.items())))
    spend, budget = st.get("spend") or {}, st.get("budget") or {}
    line = f"{'spend':<8} 60 min {_of(spend.get('hour_usd'), budget.get('hourly_usd'))}   24 h {_of(spend.get('day_usd'), budget.get('daily_usd'))}"
    if spend.get("reserved_usd"):
        line += f"   reserved {_money(spend['reserved_usd'])}"
    lines.append(line)
    keys = st.get("keys") or {}
    if keys:
        parts = []
        ranked = sorted(keys.items(), key=lambda kv: (-float(kv[1].get("day_usd") or 0), kv[0]))
        for name, k in ranked[:MAX_KEYS]:
            b = k.get("budget_usd")
            parts.append(f"{name} {_money(k.get('day_usd'))}" + (f"/{_money(b)}" if b is not None else ""))
        more = f"  (+{len(ranked) - MAX_KEYS} more; --json lists all)" if len(ranked) > MAX_KEYS else ""
        lines.append(f"{'keys 24h':<8} " + "  ".join(parts) + more)
    for name, p in sorted((st.get("providers") or {}).items()):
        rps = p.get("rps_limit")
        rps_s = f"{float(rps):.1f}" if isinstance(rps, (int, float)) else "-"
        lines.append(f"{'provider':<8} {name:<12} rps {rps_s:>6}  slots {p.get('slots_limit', '-'):>4}  "
                     f"in flight {p.get('in_flight', 0):>3}  429s {p.get('rate_limited_total', 0)}")
    return "\n".join(lines)
