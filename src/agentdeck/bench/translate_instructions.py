"""Gateway instructions per call, translated and direct: `python -m agentdeck.bench.translate_instructions`.

Why instructions: on a two-core machine shared with other work, requests/s swing by a third
between rounds and even CPU time per call moves by 10%, while the number of instructions the
gateway executes per call (counted by valgrind's callgrind) is the same from run to run. Each
of the four loads of ``agentdeck bench --scenario translate`` (two callers x two providers) runs
against its own ``agentdeck serve`` under callgrind: warmed up, counters zeroed, N calls on
four connections, counters dumped. A translated load is compared with the direct load to the
same provider. Needs valgrind (``callgrind_control`` beside it); slow (about a minute a load).
"""

from __future__ import annotations

import argparse
import asyncio
import glob
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from agentdeck.bench.gateway import _spawn
from agentdeck.bench.translate import _CALLERS, _LABEL, _TRANSLATED, _body, _read_response, _request, _write_config


async def _calls(url: str, body: bytes, n: int, connections: int = 4) -> None:
    host, port, req = _request(url, body)

    async def worker(k: int) -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            for _ in range(k):
                writer.write(req)
                if await _read_response(reader) != 200:
                    raise SystemExit(f"agentdeck.bench.translate_instructions: a call to {url} failed")
        finally:
            writer.close()

    await asyncio.gather(*(worker(n // connections) for _ in range(connections)))


def instructions_per_call(mock_url: str, caller: str, provider: str, stream: bool, calls: int, tmp: Path) -> float:
    """Instructions the gateway process executes per call of one load (callgrind's Ir count)."""
    cfg = tmp / f"{caller}-{provider}.toml"
    _write_config(cfg, mock_url, tmp / f"data-{caller}-{provider}-{stream}")
    out = tmp / f"cg-{caller}-{provider}-{stream}.out"
    gw = subprocess.Popen(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, "-m",
                           "agentdeck", "serve", "--config", str(cfg), "--port", "0"],
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert gw.stdout is not None
        while (m := re.search(r"(http://\S+)", gw.stdout.readline() or "")) is None:
            if gw.poll() is not None:
                raise SystemExit("agentdeck.bench.translate_instructions: the gateway did not start under valgrind")
        url, body = m.group(1) + _CALLERS[caller][0], _body(_CALLERS[provider][1], stream)
        asyncio.run(_calls(url, body, 64))
        subprocess.run(["callgrind_control", "-z", str(gw.pid)], capture_output=True, check=True)
        asyncio.run(_calls(url, body, calls))
        subprocess.run(["callgrind_control", "-d", str(gw.pid)], capture_output=True, check=True)
    finally:
        gw.terminate()
        gw.wait(120)
    dumps = [f for f in glob.glob(f"{out}.*") if f.rsplit(".", 1)[1].isdigit()]
    text = Path(min(dumps, key=lambda f: int(f.rsplit(".", 1)[1]))).read_text(errors="replace")
    summary = re.search(r"^summary: (\d+)", text, re.M)
    if summary is None:
        raise SystemExit("agentdeck.bench.translate_instructions: callgrind wrote no summary")
    return int(summary.group(1)) / calls


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m agentdeck.bench.translate_instructions",
                                 description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=400, help="calls measured per load (default 400)")
    args = ap.parse_args(argv)
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        print("agentdeck.bench.translate_instructions: needs valgrind (apt-get install valgrind)", file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="agentdeck-bench-instr-"))
    mock, mock_url = _spawn(["mock-upstream", "--port", "0"])
    try:
        print(f"{'translated':<26}{'mode':<8}{'direct instr/call':>18}{'translated':>12}{'added':>10}")
        for stream in (False, True):
            per = {(c, p): instructions_per_call(mock_url, c, p, stream, args.calls, tmp)
                   for c in _CALLERS for p in _CALLERS}
            for c, p in _TRANSLATED:
                d, t = per[(p, p)], per[(c, p)]
                print(f"{_LABEL[c] + ' -> ' + _LABEL[p]:<26}{'stream' if stream else 'unary':<8}{d:>18,.0f}{t:>12,.0f}"
                      f"{(t - d) / d:>+10.1%}", flush=True)
    finally:
        mock.terminate()
        mock.wait(10)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
