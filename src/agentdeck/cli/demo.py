"""`agentdeck demo`: mock providers + synthetic agents + the console (or a headless summary)."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("demo", parents=parents,
                       help="mock providers and synthetic agent traffic (429 bursts, a cost spike, a failing call) "
                            "in the console; no keys, no network")
    p.add_argument("--headless", action="store_true", help="no UI: run for --duration seconds and print a summary")
    p.add_argument("--duration", metavar="S", type=float, default=None,
                   help="seconds to run (headless default 90; with the UI, run until you quit)")
    p.add_argument("--rate", metavar="X", type=float, default=1.0, help="scale the agents' requests/s (default 1.0)")
    p.add_argument("--theme", metavar="NAME", help="console theme: dark (default), light, high-contrast, or a .toml path")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from agentdeck.cli.common import config_from
    from agentdeck.errors import AgentdeckError

    base = config_from(args) if getattr(args, "config", None) else None
    if args.duration is not None and args.duration <= 0:
        raise AgentdeckError(f"--duration: must be a positive number of seconds, got {args.duration:g}")
    if args.rate <= 0:
        raise AgentdeckError(f"--rate: must be positive, got {args.rate:g}")
    if args.headless:
        from agentdeck.demo import format_summary, run_headless

        duration = args.duration if args.duration is not None else 90.0
        print(f"agentdeck demo: running {duration:.0f} s headless (mock providers, synthetic agents)…", file=sys.stderr,
              flush=True)
        tally, status, rig = run_headless(duration, base=base, rate=args.rate,
                                          progress=lambda line: print(line, file=sys.stderr, flush=True))
        print(format_summary(tally, status, rig, duration))
        return 0
    return _console(args, base)


def _console(args: argparse.Namespace, base: Any) -> int:
    import threading

    from agentdeck.demo import DemoRig
    from agentdeck.tui.app import ConsoleApp
    from agentdeck.tui.engine import InProcessEngine
    from agentdeck.tui.theme import resolve_theme

    theme = resolve_theme(args.theme or (base.tui.theme if base is not None else None))
    from agentdeck.cli.common import clear_runtime, write_runtime

    rig = DemoRig(base=base, rate=args.rate)
    rig.start()
    try:
        assert rig.cfg is not None
        # Registered as a live gateway: `agentdeck status`/`stop`/`run` in another terminal find it.
        write_runtime(rig.cfg, rig.gateway.url, rig.gateway.admin_token, kind="demo")
        app = ConsoleApp(InProcessEngine(rig.gateway, owns_gateway=False, log_file=False), tui=rig.cfg.tui, theme=theme,
                         db_path=rig.db_path, banner="Demo: mock providers, four synthetic agents, no network. "
                         "! tries the emergency stop, ? lists keys.")
        if args.duration is not None:
            timer = threading.Timer(args.duration, lambda: app.call_from_thread(app.exit))
            timer.daemon = True
            timer.start()
        app.run()
    finally:
        if rig.cfg is not None:
            clear_runtime(rig.cfg)
        rig.stop()
    return 0
