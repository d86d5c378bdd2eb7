"""`agentdeck prices MODEL...`: the price each model is charged at, where it comes from, its output cap."""

from __future__ import annotations

import argparse
import json
from typing import Any


def register(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("prices", parents=parents,
                       help="the price per million tokens used for each model, where it comes from "
                            "(catalog version or config), and the output cap")
    p.add_argument("models", nargs="+", metavar="MODEL", help="model names as a client sends them (dated IDs too)")
    p.add_argument("--provider", default=None, metavar="NAME",
                   help="price as served by this configured provider (default: the provider the config routes the model to)")
    p.add_argument("--json", action="store_true", help="print a JSON list, one object per model")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from agentdeck.cli.common import config_from
    from agentdeck.errors import AgentdeckError
    from agentdeck.pricing import PriceTable
    from agentdeck.pricing.explain import explain, text_lines

    cfg = config_from(args)
    if args.provider is not None and args.provider not in cfg.providers:
        raise AgentdeckError(f"--provider: no provider named {args.provider!r} in {cfg.source} "
                             f"(providers: {', '.join(cfg.providers) or 'none'})")
    for m in args.models:
        if not m.strip():
            raise AgentdeckError("MODEL: a model name cannot be empty")
    table = PriceTable(cfg)
    infos = [explain(cfg, table, m, args.provider) for m in args.models]
    if args.json:
        print(json.dumps(infos, indent=2))
        return 0
    for i, info in enumerate(infos):
        if i:
            print()
        price = table.get(info["model"], info["provider"])
        print("\n".join(text_lines(info, price, table.default)))
    return 0
