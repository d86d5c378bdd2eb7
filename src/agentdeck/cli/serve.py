"""`agentdeck serve`: the gateway without the console.

It prints the URL it listens on (stdout, one line, for scripts), and on stderr a log line per
finished call and per stop, resume and alert: human by default, JSON lines with
``--log-format json`` (or ``[gateway] log_format = "json"``) for a log pipeline. ``--quiet``
keeps only stops, resumes and alerts; ``-v`` adds limit changes, 429s and escalations.
With ``[otel] endpoint`` set it also exports a span per call (the ``otel`` extra).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("serve", parents=parents, help="run the gateway headless (logs a line per call on stderr)")
    p.add_argument("--host", help="address to listen on (default from config: 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default from config: 8787; 0 picks a free one)")
    p.add_argument("--workers", type=int, default=1,
                   help="N gateway processes behind one port (needs [cluster] backend = \"redis\"; docs/cluster.md)")
    p.add_argument("--log-format", choices=("human", "json"), default=None,
                   help="stderr log lines: human (default, or [gateway] log_format) or json, one object per line")
    noise = p.add_mutually_exclusive_group()
    noise.add_argument("-v", "--verbose", action="store_true",
                       help="also log limit changes, provider 429s, escalations and budget downgrades")
    noise.add_argument("-q", "--quiet", action="store_true", help="log only stops, resumes and alerts (no line per call)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from agentdeck.cli.common import clear_runtime, config_from, runtime_path, write_runtime
    from agentdeck.errors import AgentdeckError
    from agentdeck.gateway.server import serve_forever
    from agentdeck.observe import NORMAL, QUIET, VERBOSE, Observers, attach

    cfg = config_from(args)
    host = args.host or cfg.gateway.host
    port = cfg.gateway.port if args.port is None else args.port
    if not 0 <= port <= 65535:
        raise AgentdeckError(f"--port: {port} is not a port number (0-65535)")
    if args.workers != 1:
        from agentdeck.gateway.workers import serve_workers

        return serve_workers(args, cfg, host, port, args.workers)
    verbosity = QUIET if args.quiet else VERBOSE if args.verbose else NORMAL
    if cfg.otel.endpoint:  # fail before listening, in one line, when the extra is missing
        from agentdeck.observe.otel import otlp_exporter

        otlp_exporter(cfg.otel.endpoint, cfg.otel.headers)
    observers: list[Observers] = []

    def ready(url: str, gateway: Any) -> None:
        write_runtime(cfg, url, gateway.admin_token, kind="serve")
        # The call log prints alerts itself (in the chosen format); the alert sink keeps its webhook.
        gateway.alerts.stderr = False
        observers.append(attach(gateway.bus, cfg, log_stream=sys.stderr, log_format=args.log_format,
                                verbosity=verbosity, secrets=gateway.secrets()))
        print(f"agentdeck gateway listening on {url}", flush=True)
        if not cfg.gateway.admin_token:
            print(f"admin token (also in {runtime_path(cfg)}, mode 0600): generated for this run",
                  file=sys.stderr, flush=True)

    try:
        serve_forever(cfg, host, port, on_ready=ready)
    finally:
        for obs in observers:
            obs.close()
        clear_runtime(cfg)
    print("agentdeck gateway stopped", file=sys.stderr, flush=True)
    return 0
