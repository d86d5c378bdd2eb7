"""`agentdeck stop --reason TEXT [--key NAME]` and `agentdeck resume [--key NAME]`: the emergency stop from a shell.

Why a thin HTTP call and not a database write: the running gateway holds the stop in
memory (that is what refuses new calls within 100 ms and ends open streams); it records
the stop itself. These commands find the local gateway without flags (the URL and admin
token a console or `serve` left in the data dir) and say in one line what happened.
"""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("stop", parents=parents, help="emergency stop: refuse all agent traffic (or one key's / session's)")
    p.add_argument("--reason", required=True, metavar="TEXT", help="why (recorded with the stop, shown to callers)")
    p.add_argument("--key", metavar="NAME", help="stop only this key or `agentdeck run` session (default: everything)")
    p.add_argument("--url", metavar="U", help="gateway URL (default: the local gateway, then the config's host:port)")
    p.set_defaults(func=run_stop)

    r = sub.add_parser("resume", parents=parents, help="lift the emergency stop (globally, or for one key or session)")
    r.add_argument("--key", metavar="NAME", help="resume only this key or session (default: the global stop)")
    r.add_argument("--url", metavar="U", help="gateway URL (default: the local gateway, then the config's host:port)")
    r.set_defaults(func=run_resume)


def _scope(key: str | None) -> str:
    return f"key '{key}'" if key else "all traffic"


def run_stop(args: argparse.Namespace) -> int:
    from agentdeck.cli.common import admin_request, config_from, gateway_target
    from agentdeck.errors import AgentdeckError

    reason = args.reason.strip()
    if not reason:
        raise AgentdeckError("--reason: say why traffic is being stopped")
    url, token = gateway_target(config_from(args), args.url)
    admin_request(url, token, "POST", "/admin/stop", {"reason": reason, "key": args.key, "actor": "cli"})
    resume = "agentdeck resume" + (f" --key {args.key}" if args.key else "")
    print(f"STOPPED {_scope(args.key)} at {url}: {reason} (lift with `{resume}`)")
    return 0


def run_resume(args: argparse.Namespace) -> int:
    from agentdeck.cli.common import admin_request, config_from, gateway_target

    url, token = gateway_target(config_from(args), args.url)
    before = admin_request(url, token, "GET", "/admin/status")
    was = before.get("stopped") if args.key is None else args.key in (before.get("stopped_keys") or {})
    after = admin_request(url, token, "POST", "/admin/resume", {"key": args.key, "actor": "cli"})
    if not was:
        print(f"{_scope(args.key)} was not stopped at {url}; nothing to resume")
        return 0
    if args.key is not None:
        note = " (the global stop is still active)" if after.get("stopped") else ""
    else:
        left = sorted(before.get("stopped_keys") or {})
        note = f" (still stopped: {', '.join(left)}; lift each with `agentdeck resume --key NAME`)" if left else ""
    print(f"RESUMED {_scope(args.key)} at {url}{note}")
    return 0


run = run_stop
