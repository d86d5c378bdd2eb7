"""Gateway CPU time per call, for two source trees side by side: `python -m agentdeck.bench.cpu_per_call OLD_SRC [NEW_SRC]`.

Why CPU time and not requests/s: on a shared two-core machine throughput swings by half
between runs, while the user+system time the ``serve`` process spends per call barely moves.
Each round starts the mock provider and ``agentdeck serve`` from the given tree (via
PYTHONPATH), warms up, sends N non-streamed chat calls from C connections and reads the
serve process's CPU times before and after. Rounds alternate old/new.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import aiohttp

from agentdeck.bench.gateway import BENCH_KEY, _write_config

HEADERS = {"content-type": "application/json", "authorization": f"Bearer {BENCH_KEY}"}
_BODY = b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 16}'


def _url_of(proc: "subprocess.Popen[str]") -> str:
    assert proc.stdout is not None
    m = re.search(r"(http://\S+)", proc.stdout.readline())
    if m is None:
        raise SystemExit("agentdeck.bench.cpu_per_call: a child did not print its URL")
    return m.group(1).rstrip("/")


def cpu_per_call_us(src: str, calls: int = 6000, connections: int = 16) -> float:
    """Microseconds of the gateway process's CPU per call, with the gateway run from ``src``."""
    import psutil

    env = {**os.environ, "PYTHONPATH": src}
    tmp = Path(tempfile.mkdtemp(prefix="agentdeck-cpu-"))
    mock = subprocess.Popen([sys.executable, "-m", "agentdeck", "mock-upstream", "--port", "0"], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, env=env)
    gw = None
    try:
        murl = _url_of(mock)
        cfg = tmp / "bench.toml"
        _write_config(cfg, murl, tmp / "data", limits=True)
        gw = subprocess.Popen([sys.executable, "-m", "agentdeck", "serve", "--config", str(cfg)], stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True, env=env)
        url = _url_of(gw) + "/v1/chat/completions"

        async def main() -> float:
            async with aiohttp.ClientSession() as s:
                async def worker(n: int) -> None:
                    for _ in range(n):
                        async with s.post(url, data=_BODY, headers=HEADERS) as r:
                            await r.read()
                await worker(300)
                proc = psutil.Process(gw.pid)  # type: ignore[union-attr]
                before = proc.cpu_times()
                await asyncio.gather(*(worker(calls // connections) for _ in range(connections)))
                after = proc.cpu_times()
                used = (after.user - before.user) + (after.system - before.system)
                return used / (calls // connections * connections) * 1e6

        return asyncio.run(main())
    finally:
        for p in (gw, mock):
            if p is not None:
                p.terminate()
                p.wait(10)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m agentdeck.bench.cpu_per_call", description=__doc__.splitlines()[0])
    ap.add_argument("old", help="the src/ folder of the tree to compare with (e.g. a git worktree of an older commit)")
    ap.add_argument("new", nargs="?", default=str(Path(__file__).resolve().parents[2]), help="default: this tree")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--calls", type=int, default=6000)
    args = ap.parse_args(argv)
    old, new = [], []
    for _ in range(args.rounds):
        old.append(cpu_per_call_us(args.old, args.calls))
        new.append(cpu_per_call_us(args.new, args.calls))
        print(f"old {old[-1]:6.1f} us   new {new[-1]:6.1f} us   ratio {new[-1] / old[-1]:.2f}", flush=True)
    mo, mn = sorted(old)[len(old) // 2], sorted(new)[len(new) // 2]
    print(f"median: old {mo:.1f} us, new {mn:.1f} us CPU per call (new/old {mn / mo:.2f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
