"""`agentdeck bench`: benchmarks, each side by side in one run (never timed tests)."""

from __future__ import annotations

import argparse
import importlib.util
import json
from typing import Any

SCENARIOS = ("gateway", "clients", "aimd", "console", "flaky", "sse", "translate", "cluster")
# psutil is the `bench` extra: only these scenarios read process CPU and memory with it.
NEEDS_PSUTIL = ("gateway", "clients", "console", "cluster")


def register(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("bench", parents=parents, help="measure gateway overhead (and other scenarios) side by side")
    p.add_argument("--scenario", choices=SCENARIOS, default="gateway", help="what to measure (default: gateway)")
    p.add_argument("--duration", type=float, default=None, metavar="S",
                   help="seconds per measured round (default 5; console: seconds with the console open, default 30)")
    p.add_argument("--concurrency", type=int, default=32, metavar="C", help="keep-alive connections (default 32)")
    p.add_argument("--rounds", type=int, default=2, help="alternating direct/gateway rounds (default 2)")
    p.add_argument("--limits-off", action="store_true", help="gateway scenario: disable the AIMD limiter (for the on/off comparison)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from agentdeck.errors import AgentdeckError

    if args.duration is None:
        args.duration = 30.0 if args.scenario == "console" else 5.0
    if args.duration <= 0 or args.concurrency < 1 or args.rounds < 1:
        raise AgentdeckError("--duration, --concurrency and --rounds must be positive")
    if args.scenario in NEEDS_PSUTIL and importlib.util.find_spec("psutil") is None:
        raise AgentdeckError(f"agentdeck bench --scenario {args.scenario} measures processes with psutil, which is not "
                             "installed: pip install 'agentdeck[bench]'")
    if args.scenario == "gateway":
        from agentdeck.bench.gateway import format_gateway_report, run_gateway_bench

        result = run_gateway_bench(args.duration, args.concurrency, args.rounds, limits=not args.limits_off)
        print(json.dumps(result, indent=2) if args.json else format_gateway_report(result))
        return 0
    if args.scenario == "clients":
        from agentdeck.bench.gateway import format_client_report, run_client_bench

        result = run_client_bench(args.duration, args.concurrency, args.rounds)
        print(json.dumps(result, indent=2) if args.json else format_client_report(result))
        return 0
    if args.scenario == "aimd":
        from agentdeck.bench.aimd import format_aimd_report, run_aimd_scenario

        result = run_aimd_scenario()
        print(json.dumps({k: v for k, v in result.items() if k != "series"}, indent=2, default=str) if args.json
              else format_aimd_report(result))
        return 0
    if args.scenario == "console":
        from agentdeck.bench.console import compare_console, format_comparison

        result = compare_console(duration_s=args.duration)
        print(json.dumps(result, indent=2) if args.json else format_comparison(result))
        return 0
    if args.scenario == "translate":
        from agentdeck.bench.translate import format_translate_report, run_translate_bench

        trows = run_translate_bench(duration=args.duration, concurrency=args.concurrency, rounds=args.rounds)
        print(json.dumps(trows, indent=2) if args.json else format_translate_report(trows))
        return 0
    if args.scenario == "cluster":
        from agentdeck.bench.cluster import format_report, run_cluster_bench

        # One caller's latency is sampled over as many calls as a round lasts at ~300 calls/s (1,500 at 5 s).
        cres = run_cluster_bench(args.duration, args.concurrency, single_calls=max(50, int(300 * args.duration)),
                                 rounds=args.rounds)
        print(json.dumps(cres, indent=2) if args.json else format_report(cres))
        return 0
    if args.scenario == "sse":
        from agentdeck.bench.sse import format_sse_report, run_sse_bench

        rows = run_sse_bench()
        print(json.dumps(rows, indent=2) if args.json else format_sse_report(rows))
        return 0
    from agentdeck.bench.flaky import bench_flaky, format_flaky_report

    result = bench_flaky()
    print(json.dumps(result, indent=2) if args.json else format_flaky_report(result))
    return 0
