"""Cluster mode's cost, side by side in one run: ``agentdeck bench --scenario cluster``
(or ``python -m agentdeck.bench.cluster``, which also takes ``--single-calls``).

Why these three: cluster mode adds Redis work per call (one round trip on the call's path
for the hold with its slot and first token, and the settle and the slot release sent after
it), so the questions are what one caller pays for it (added p50 over local mode), what
one process keeps of its local throughput at 32 connections, and whether ``--workers 2``
buys that back on a multi-core machine. CPU per call (the gateway's, and redis-server's)
is reported too: on a shared machine it is a much steadier figure than requests/s. It
starts its own redis-server (a free loopback port, a temp dir, no persistence), the mock
provider and each gateway in turn, alternating the three ``--rounds`` times. A script, not
a test: numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from agentdeck.bench.gateway import _BODY, BENCH_KEY, _single, _spawn, _write_config
from agentdeck.bench.loadgen import load as lean_load
from agentdeck.errors import AgentdeckError


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_redis(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    exe = shutil.which("redis-server")
    if exe is None:
        raise AgentdeckError("the cluster bench needs redis-server on PATH (apt-get install redis-server)")
    port = _free_port()
    proc = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", str(workdir)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc, f"redis://127.0.0.1:{port}/0"
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise AgentdeckError("redis-server did not start for the cluster bench")


def _stop(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _cpu_s(procs: list[Any]) -> float:
    """User + system CPU seconds of these processes so far (a process gone meanwhile counts nothing more)."""
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
        except Exception:  # psutil.NoSuchProcess: a worker restarted mid-round
            continue
        total += t.user + t.system
    return total


def _measure(cfg: Path, workers: int, duration: float, concurrency: int, single_calls: int,
             redis_pid: int | None = None) -> dict[str, float]:
    """One gateway (or ``--workers N``): throughput at ``concurrency``, CPU per call, then one caller's latency.

    CPU per call is the gateway processes' user+system time over the calls of the load phase (and
    redis-server's, separately): on a shared machine it moves much less than requests/s does.
    """
    import psutil

    args = ["serve", "--config", str(cfg), "--port", "0"] + (["--workers", str(workers)] if workers > 1 else [])
    gw, url = _spawn(args)
    headers = {"authorization": f"Bearer {BENCH_KEY}", "content-type": "application/json"}
    via = url + "/v1/chat/completions"
    try:
        lean_load(via, _BODY, concurrency, 1.0)  # warm up connections and code paths
        root = psutil.Process(gw.pid)
        gws = [root, *root.children(recursive=True)]
        red = [psutil.Process(redis_pid)] if redis_pid is not None else []
        before, rbefore = _cpu_s(gws), _cpu_s(red)
        load = lean_load(via, _BODY, concurrency, duration)  # the gateway, not the client, sets the pace
        used, rused = _cpu_s(gws) - before, _cpu_s(red) - rbefore
        single = asyncio.run(_single(via, headers, single_calls)) if single_calls else None
    finally:
        _stop(gw)
    calls = max(1, load.requests)
    out = {"rps": round(load.rps, 1), "errors": load.errors, "cpu_us_per_call": round(used / calls * 1e6, 1),
           "redis_cpu_us_per_call": round(rused / calls * 1e6, 1)}
    if single is not None:
        out |= {"single_p50_ms": round(single.pct(0.5), 3), "single_p99_ms": round(single.pct(0.99), 3)}
    return out


def _median_of(rounds: list[dict[str, float]]) -> dict[str, Any]:
    """Each figure's median over the rounds, with its range (``<name>_range``) when there are several."""
    import statistics

    out: dict[str, Any] = {}
    for name in rounds[0]:
        values = [r[name] for r in rounds]
        out[name] = round(statistics.median(values), 3) if name != "errors" else sum(values)
        if len(rounds) > 1 and name != "errors":
            out[name + "_range"] = [min(values), max(values)]
    return out


def run_cluster_bench(duration: float = 5.0, concurrency: int = 32, single_calls: int = 1500,
                      rounds: int = 1) -> dict[str, Any]:
    """Local, cluster and cluster ``--workers 2``, alternated ``rounds`` times (so machine load hits all three
    alike); medians, with each figure's range across rounds."""
    tmp = Path(tempfile.mkdtemp(prefix="agentdeck-bench-cluster-"))
    (tmp / "redis").mkdir()
    redis, redis_url = _start_redis(tmp / "redis")
    mock, mock_url = _spawn(["mock-upstream", "--port", "0"])
    runs: dict[str, list[dict[str, float]]] = {"local": [], "cluster": [], "cluster_workers_2": []}
    try:
        local_cfg, cluster_cfg = tmp / "local.toml", tmp / "cluster.toml"
        _write_config(local_cfg, mock_url, tmp / "data-local", True)
        _write_config(cluster_cfg, mock_url, tmp / "data-cluster", True)
        with cluster_cfg.open("a") as f:
            f.write(f'\n[cluster]\nbackend = "redis"\nurl = "{redis_url}"\nname = "bench"\n')
        for _ in range(max(1, rounds)):
            runs["local"].append(_measure(local_cfg, 1, duration, concurrency, single_calls))
            runs["cluster"].append(_measure(cluster_cfg, 1, duration, concurrency, single_calls, redis.pid))
            runs["cluster_workers_2"].append(_measure(cluster_cfg, 2, duration, concurrency, 0, redis.pid))
    finally:
        _stop(mock)
        redis.kill()
        redis.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    local, cluster, workers2 = (_median_of(runs[m]) for m in ("local", "cluster", "cluster_workers_2"))
    pair = list(zip(runs["local"], runs["cluster"], runs["cluster_workers_2"]))
    return {
        "concurrency": concurrency, "duration_s": duration, "rounds": len(pair),
        "local": local, "cluster": cluster, "cluster_workers_2": workers2,
        "added_p50_ms": round(cluster["single_p50_ms"] - local["single_p50_ms"], 3),
        "added_cpu_us_per_call": round(cluster["cpu_us_per_call"] - local["cpu_us_per_call"], 1),
        "cluster_vs_local_rps": round(cluster["rps"] / local["rps"], 3) if local["rps"] else None,
        "workers2_vs_one_rps": round(workers2["rps"] / cluster["rps"], 3) if cluster["rps"] else None,
        # the same ratios round by round (each round's three runs are close in time, so they share its load)
        "per_round": [{"added_p50_ms": round(c["single_p50_ms"] - lo["single_p50_ms"], 3),
                       "cluster_vs_local_rps": round(c["rps"] / lo["rps"], 3) if lo["rps"] else None,
                       "workers2_vs_one_rps": round(w["rps"] / c["rps"], 3) if c["rps"] else None}
                      for lo, c, w in pair],
    }


def format_report(r: dict[str, Any]) -> str:
    lo, cl, w2 = r["local"], r["cluster"], r["cluster_workers_2"]
    n = r.get("rounds", 1)
    lines = [
        f"cluster bench: {r['concurrency']} keep-alive connections, {r['duration_s']:g} s per round, "
        f"{n} round{'s' if n != 1 else ''} (medians)",
        f"  one caller p50:   local {lo['single_p50_ms']:.3f} ms, cluster {cl['single_p50_ms']:.3f} ms "
        f"(added {r['added_p50_ms']:+.3f} ms; target < 0.5)",
        f"  throughput:       local {lo['rps']:.0f} req/s, cluster {cl['rps']:.0f} req/s "
        f"({r['cluster_vs_local_rps']:.0%} of local; target >= 70%)",
        f"  --workers 2:      {w2['rps']:.0f} req/s ({r['workers2_vs_one_rps']:.2f}x one cluster process; target > 1)",
        f"  CPU per call:     local {lo['cpu_us_per_call']:.0f} us, cluster {cl['cpu_us_per_call']:.0f} us "
        f"(added {r['added_cpu_us_per_call']:+.0f} us; redis-server {cl['redis_cpu_us_per_call']:.0f} us), "
        f"--workers 2 {w2['cpu_us_per_call']:.0f} us",
        f"  errors:           local {lo['errors']}, cluster {cl['errors']}, workers {w2['errors']}",
    ]
    if n > 1:
        rows = r["per_round"]
        lines.append("  per round:        " + "; ".join(
            f"{x['added_p50_ms']:+.3f} ms, {x['cluster_vs_local_rps']:.0%}, {x['workers2_vs_one_rps']:.2f}x" for x in rows))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m agentdeck.bench.cluster", description=__doc__.splitlines()[0])
    p.add_argument("--duration", type=float, default=5.0)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--single-calls", type=int, default=1500)
    p.add_argument("--rounds", type=int, default=3, help="local, cluster and --workers 2 alternated this many times")
    p.add_argument("--json", action="store_true")
    a = p.parse_args(argv)
    try:
        r = run_cluster_bench(a.duration, a.concurrency, a.single_calls, a.rounds)
    except AgentdeckError as e:
        print(f"agentdeck: error: {e}", file=sys.stderr)
        return 1
    print(json.dumps(r, indent=2) if a.json else format_report(r))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
