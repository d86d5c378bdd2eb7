"""`agentdeck status [--json]`: is the gateway live or stopped, what has been spent, how close to the limits.

Why a compact human view by default: it is what an on-call engineer types first at 3 a.m.;
on a terminal the budgets are drawn as bars (Rich), piped it stays plain text for grep and awk;
`--json` gives the full /admin/status document for scripts. It exits 4 while the emergency stop
is engaged (3 when the gateway cannot be reached), so `agentdeck status >/dev/null || ...` works.
With no `--url` and several local gateways running (a demo, a serve), it shows each of them.
In cluster mode any one process answers for the cluster: spend, stop and limits are the
cluster's, and a table lists every live process (status_cluster).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

MAX_KEYS = 6
EXIT_STOPPED = 4


def register(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("status", parents=parents, help="state of the running gateway (kill switch, spend, budgets, limits); "
                                                       "exits 4 while STOPPED, 3 if unreachable")
    p.add_argument("--json", action="store_true", help="print the /admin/status JSON as is")
    p.add_argument("--url", metavar="U", help="gateway URL (default: the local gateway(s), then the config's host:port)")
    p.set_defaults(func=run)


def _targets(args: argparse.Namespace) -> list[tuple[str, str, str]]:
    """(url, admin token, what it is) for each gateway to show."""
    from agentdeck.cli.common import address_pinned, config_from, gateway_target, live_gateways

    cfg = config_from(args)
    if args.url is None and not address_pinned(cfg):
        lives = live_gateways(cfg)
        if len(lives) > 1:
            token = os.environ.get("AGENTDECK_ADMIN_TOKEN") or cfg.gateway.admin_token
            return [(e.url, token or e.admin_token(), f"{e.kind}, pid {e.pid}") for e in lives]
    url, token = gateway_target(cfg, args.url)
    return [(url, token, "")]


def run(args: argparse.Namespace) -> int:
    from agentdeck.cli.common import admin_request
    from agentdeck.errors import GatewayUnreachable

    targets = _targets(args)
    if len(targets) == 1:
        url, token, _ = targets[0]
        st = admin_request(url, token, "GET", "/admin/status")
        if args.json:
            print(json.dumps(st, indent=2, sort_keys=True))
        else:
            _show([(url, "", st, None)])
        return EXIT_STOPPED if st.get("stopped") else 0
    shown: list[tuple[str, str, dict[str, Any] | None, str | None]] = []
    for url, token, what in targets:
        try:
            shown.append((url, what, admin_request(url, token, "GET", "/admin/status"), None))
        except GatewayUnreachable as e:
            shown.append((url, what, None, str(e)))
    if args.json:
        print(json.dumps({"gateways": [{"url": u, "what": w, "status": st, "error": err} for u, w, st, err in shown]},
                         indent=2, sort_keys=True))
    else:
        _show(shown)
    if any(st is not None and st.get("stopped") for _, _, st, _ in shown):
        return EXIT_STOPPED
    return 3 if any(st is None for _, _, st, _ in shown) else 0


def _show(shown: list[tuple[str, str, dict[str, Any] | None, str | None]]) -> None:
    """Bars on a terminal, plain lines when piped (or NO_COLOR / TERM=dumb)."""
    fancy = sys.stdout.isatty() and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"
    console = None
    if fancy:
        from rich.console import Console

        console = Console(highlight=False)
    listed: set[tuple[str, str]] = set()  # clusters whose process table is already on screen
    for i, (url, what, st, err) in enumerate(shown):
        if i:
            print()
        c = (st or {}).get("cluster")
        if st is not None and c:
            seen = (str(c.get("name")), str(c.get("redis")))
            if seen in listed:  # several local processes of one cluster: its table once, not once each
                st = {**st, "cluster": None}
                what = f"{what}; cluster '{seen[0]}' listed above" if what else f"cluster '{seen[0]}' listed above"
            listed.add(seen)
        if st is None:
            print(f"{'UNREACHABLE':<8} {url}" + (f"  ({what})" if what else "") + f"\n{'error':<8} {err}")
        elif console is not None:
            console.print(render_rich(url, st, what))
        else:
            text = render(url, st)
            if what:
                first, _, rest = text.partition("\n")
                text = f"{first}  [{what}]" + (f"\n{rest}" if rest else "")
            print(text)


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
        shared = f" (cluster {p['cluster_in_flight']})" if "cluster_in_flight" in p else ""
        lines.append(f"{'provider':<8} {name:<12} rps {rps_s:>6}  slots {p.get('slots_limit', '-'):>4}  "
                     f"in flight {p.get('in_flight', 0):>3}{shared}  429s {p.get('rate_limited_total', 0)}")
    if st.get("cluster"):
        from agentdeck.cli.status_cluster import render_lines

        lines += render_lines(st["cluster"])
    return "\n".join(lines)


def _bar_row(label: str, spent: Any, limit: Any) -> tuple[Any, ...]:
    from rich.progress_bar import ProgressBar
    from rich.text import Text

    try:
        s, lim = float(spent), float(limit)
    except (TypeError, ValueError):
        return (label, Text("-"), Text(_money(spent)))
    if lim <= 0:
        return (label, Text("no limit", style="dim"), Text(_money(s)))
    share = s / lim
    style = "red" if share >= 0.9 else "yellow" if share >= 0.7 else "green"
    bar = ProgressBar(total=lim, completed=min(s, lim), width=30, complete_style=style, finished_style="red")
    return (label, bar, Text(f"{_money(s)} / {_money(lim)} ({share:.0%})", style=style if share >= 0.7 else ""))


def render_rich(url: str, st: dict[str, Any], what: str = "") -> Any:
    """The terminal view: the state line, then one bar per budget (global windows, then keys with a cap)."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    state = Text("STOPPED", style="bold white on red") if st.get("stopped") else Text("LIVE", style="bold green")
    head = Text.assemble(state, "  ", url)
    extra = [f"up {_dur(st['uptime_s'])}"] if "uptime_s" in st else []
    if "in_flight" in st:
        extra.append(f"{st['in_flight']} in flight")
    if what:
        extra.append(what)
    if extra:
        head.append(f"  ({', '.join(extra)})", style="dim")
    parts: list[Any] = [head]
    if st.get("stopped"):
        parts.append(Text(f"reason  {st.get('stop_reason') or '-'}  (lift with `agentdeck resume`)", style="red"))
    stopped_keys = st.get("stopped_keys") or {}
    if stopped_keys:
        parts.append(Text("stopped " + "; ".join(f"{k}: {v}" for k, v in sorted(stopped_keys.items())), style="red"))
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    grid.add_column()
    spend, budget = st.get("spend") or {}, st.get("budget") or {}
    grid.add_row(*_bar_row("60 min", spend.get("hour_usd"), budget.get("hourly_usd")))
    grid.add_row(*_bar_row("24 h", spend.get("day_usd"), budget.get("daily_usd")))
    keys = st.get("keys") or {}
    ranked = sorted(keys.items(), key=lambda kv: (-float(kv[1].get("day_usd") or 0), kv[0]))
    for name, k in ranked[:MAX_KEYS]:
        if k.get("budget_usd") is not None:
            grid.add_row(*_bar_row(f"key {name}", k.get("day_usd"), k.get("budget_usd")))
    parts.append(grid)
    if spend.get("reserved_usd"):
        parts.append(Text(f"reserved {_money(spend['reserved_usd'])} for calls in flight", style="dim"))
    unbudgeted = [(n, k) for n, k in ranked[:MAX_KEYS] if k.get("budget_usd") is None]
    if unbudgeted:
        parts.append(Text("keys 24h  " + "  ".join(f"{n} {_money(k.get('day_usd'))}" for n, k in unbudgeted)))
    providers = st.get("providers") or {}
    if providers:
        table = Table(box=None, padding=(0, 2), show_edge=False, header_style="bold")
        shared = any("cluster_in_flight" in p for p in providers.values())
        cols = ("provider", "rps limit", "slots", "in flight", *(("cluster in flight",) if shared else ()), "429s")
        for col in cols:
            table.add_column(col, justify="left" if col == "provider" else "right")
        for name, p in sorted(providers.items()):
            rps = p.get("rps_limit")
            extra = (str(p.get("cluster_in_flight", "-")),) if shared else ()
            table.add_row(name, f"{float(rps):.1f}" if isinstance(rps, (int, float)) else "-",
                          str(p.get("slots_limit", "-")), str(p.get("in_flight", 0)), *extra,
                          str(p.get("rate_limited_total", 0)))
        parts.append(table)
    if st.get("cluster"):
        from agentdeck.cli.status_cluster import render_rich as cluster_rich

        parts += cluster_rich(st["cluster"])
    return Group(*parts)
