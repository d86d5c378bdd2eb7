"""Gateway instructions per call under valgrind, for two source trees side by side:
`python -m agentdeck.bench.instructions OLD_SRC [NEW_SRC]`.

Why instructions: CPU time per call (``agentdeck.bench.cpu_per_call``) still moves by 5-10%
with what else the machine runs; the number of instructions the serve process executes for a
call does not (two runs of one tree agree within 0.2%), so a change of 2% is visible. It is not
a latency: cache misses and system calls are left out, and work done on a timer (the stats
tick, the log thread, the store's flush) is counted per call at valgrind's pace (~50x slower),
so it weighs more here than in a real run.

Each tree's ``agentdeck serve`` runs under ``valgrind --tool=callgrind`` with collection off;
after a warm-up the bench turns it on (``callgrind_control -i on``), sends the calls from 8
connections, turns it off and reads the total. The two trees run at the same time (same
machine load, same wall-clock pace), each against its own mock provider from the NEW tree.
Needs valgrind (``apt-get install valgrind``); minutes per run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import aiohttp

from agentdeck.bench.cpu_per_call import _BODY, HEADERS
from agentdeck.bench.gateway import _write_config

_CONNECTIONS = 8


def _url_of(proc: "subprocess.Popen[str]") -> str:
    assert proc.stdout is not None
    for line in proc.stdout:
        m = re.search(r"(http://\S+)", line)
        if m:
            return m.group(1).rstrip("/")
    raise SystemExit("agentdeck.bench.instructions: a child did not print its URL")


def instructions_per_call(src: str, mock_src: str, calls: int) -> float:
    """Thousands of instructions the gateway run from ``src`` executes per non-streamed chat call."""
    tmp = Path(tempfile.mkdtemp(prefix="agentdeck-instr-"))
    out = tmp / "callgrind.out"
    mock = subprocess.Popen([sys.executable, "-m", "agentdeck", "mock-upstream", "--port", "0"], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, env={**os.environ, "PYTHONPATH": mock_src})
    gw = None
    try:
        cfg = tmp / "bench.toml"
        _write_config(cfg, _url_of(mock), tmp / "data", limits=True)
        gw = subprocess.Popen(["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}",
                               sys.executable, "-m", "agentdeck", "serve", "--config", str(cfg)],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                              env={**os.environ, "PYTHONPATH": src})
        url = _url_of(gw) + "/v1/chat/completions"

        async def load() -> None:
            async with aiohttp.ClientSession() as s:
                async def worker(n: int) -> None:
                    for _ in range(n):
                        async with s.post(url, data=_BODY, headers=HEADERS) as r:
                            await r.read()
                await asyncio.gather(*(worker(25) for _ in range(_CONNECTIONS)))
                subprocess.run(["callgrind_control", "-i", "on", str(gw.pid)], capture_output=True, check=True)
                await asyncio.gather(*(worker(calls // _CONNECTIONS) for _ in range(_CONNECTIONS)))
                subprocess.run(["callgrind_control", "-i", "off", str(gw.pid)], capture_output=True, check=True)

        asyncio.run(load())
        gw.terminate()
        gw.wait(300)
        # The file's summary line (and a totals line per part): the largest is the whole run's count.
        total = max(int(line.split()[1]) for line in out.read_text().splitlines()
                    if line.startswith(("summary:", "totals:")))
        return total / (calls // _CONNECTIONS * _CONNECTIONS) / 1e3
    finally:
        for p in (gw, mock):
            if p is not None and p.poll() is None:
                p.terminate()
                p.wait(60)
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m agentdeck.bench.instructions", description=__doc__.splitlines()[0])
    ap.add_argument("old", help="the src/ folder of the tree to compare with (e.g. a git worktree of an older commit)")
    ap.add_argument("new", nargs="?", default=str(Path(__file__).resolve().parents[2]), help="default: this tree")
    ap.add_argument("--calls", type=int, default=1600)
    args = ap.parse_args(argv)
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        print("agentdeck.bench.instructions: needs valgrind (apt-get install valgrind)", file=sys.stderr)
        return 2
    with ThreadPoolExecutor(2) as pool:
        old_f = pool.submit(instructions_per_call, args.old, args.new, args.calls)
        new_f = pool.submit(instructions_per_call, args.new, args.new, args.calls)
        old, new = old_f.result(), new_f.result()
    print(f"old {old:.1f}k   new {new:.1f}k instructions per call   new/old {new / old:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
