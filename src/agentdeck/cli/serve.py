"""`agentdeck serve`: the gateway without the console."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("serve", parents=parents, help="run the gateway headless")
    p.add_argument("--host", help="address to listen on (default from config: 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default from config: 8787; 0 picks a free one)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from agentdeck.cli.common import clear_runtime, config_from, write_runtime
    from agentdeck.gateway.server import serve_forever

    cfg = config_from(args)
    host = args.host or cfg.gateway.host
    port = cfg.gateway.port if args.port is None else args.port
    if not 0 <= port <= 65535:
        from agentdeck.errors import AgentdeckError

        raise AgentdeckError(f"--port: {port} is not a port number (0-65535)")

    def ready(url: str, gateway: Any) -> None:
        write_runtime(cfg, url, gateway.admin_token)
        print(f"agentdeck gateway listening on {url}", flush=True)
        if not cfg.gateway.admin_token:
            print(f"admin token (also in {cfg.gateway.data_path / 'gateway.json'}, mode 0600): generated for this run",
                  file=sys.stderr, flush=True)

    try:
        serve_forever(cfg, host, port, on_ready=ready)
    finally:
        clear_runtime(cfg)
    print("agentdeck gateway stopped", file=sys.stderr, flush=True)
    return 0
