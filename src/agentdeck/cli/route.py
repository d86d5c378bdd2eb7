"""`agentdeck route`: explain where a task would be routed, without calling anything."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def register(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("route", parents=parents, help="which tier and model a task would be routed to, and by which rule")
    p.add_argument("text", nargs="+", metavar="TEXT", help="the task, as an agent would send it ('-' reads it from stdin)")
    p.add_argument("--json", action="store_true", help='print {"tier", "model", "rule", "reason"} as JSON')
    p.add_argument("--protocol", choices=("anthropic", "openai", "gemini"), default="anthropic",
                   help="which column of the tier table to use (default: anthropic)")
    p.add_argument("--context-tokens", type=int, default=None, metavar="N",
                   help="size of the whole prompt in tokens (default: estimated from TEXT)")
    p.add_argument("--model", default="auto", metavar="NAME", help="the model the client asks for (default: auto)")
    p.add_argument("--budget-share", type=float, default=0.0, metavar="F",
                   help="share of the fuller budget already spent, 0..1, to see a downgrade (default: 0)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from agentdeck.cli.common import config_from
    from agentdeck.errors import AgentdeckError
    from agentdeck.routing import Router

    text = " ".join(args.text)
    if text == "-":
        text = sys.stdin.read()
    if args.context_tokens is not None and args.context_tokens < 0:
        raise AgentdeckError("--context-tokens must be 0 or more")
    if not 0.0 <= args.budget_share <= 1.0:
        raise AgentdeckError("--budget-share must be between 0 and 1")
    tokens = args.context_tokens if args.context_tokens is not None else (len(text) + 3) // 4
    router = Router(config_from(args))
    route = router.resolve(args.model, args.protocol, text, tokens, args.budget_share)
    if args.json:
        print(json.dumps({"tier": route.tier, "model": route.model, "rule": route.rule, "reason": route.reason}))
        return 0
    rows = [("tier", route.tier or "-"), ("model", f"{route.model} ({args.protocol})"), ("rule", route.rule),
            ("reason", route.reason)]
    if route.downgraded_from:
        rows.insert(1, ("downgraded", f"from {route.downgraded_from} (budget share {args.budget_share:.0%})"))
    for k, v in rows:
        print(f"{k:<11}{v}")
    return 0
