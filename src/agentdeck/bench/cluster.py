"""Cluster mode's cost, side by side in one run: ``agentdeck bench --scenario cluster``
(or ``python -m agentdeck.bench.cluster``, which also takes ``--single-calls``).

Why these three: cluster mode adds Redis round trips per call (the stop read, the hold,
the slot, the pace, the release, the settle), so the questions are what one caller pays
for them (added p50 over local mode), what one process keeps of its local throughput at
32 connections, and whether ``--workers 2`` buys that back on a multi-core machine. It
starts its own redis-server (a free loopback port, a temp dir, no persistence), the mock
provider and each gateway in turn. A script, not a test: numbers depend on the machine.
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

from agentdeck.bench.gateway import BENCH_KEY, _load, _single, _spawn, _write_config
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


def _measure(cfg: Path, workers: int, duration: float, concurrency: int, single_calls: int) -> dict[str, float]:
    args = ["serve", "--config", str(cfg), "--port", "0"] + (["--workers", str(workers)] if workers > 1 else [])
    gw, url = _spawn(args)
    headers = {"authorization": f"Bearer {BENCH_KEY}", "content-type": "application/json"}
    via = url + "/v1/chat/completions"
    try:
        asyncio.run(_load(via, headers, concurrency, 1.0))  # warm up connections and code paths
        load = asyncio.run(_load(via, headers, concurrency, duration))
        single = asyncio.run(_single(via, headers, single_calls)) if single_calls else None
    finally:
        _stop(gw)
    out = {"rps": round(load.rps, 1), "errors": load.errors}
    if single is not None:
        out |= {"single_p50_ms": round(single.pct(0.5), 3), "single_p99_ms": round(single.pct(0.99), 3)}
    return out


def run_cluster_bench(duration: float = 5.0, concurrency: int = 32, single_calls: int = 1500) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="agentdeck-bench-cluster-"))
    (tmp / "redis").mkdir()
    redis, redis_url = _start_redis(tmp / "redis")
    mock, mock_url = _spawn(["mock-upstream", "--port", "0"])
    try:
        local_cfg, cluster_cfg = tmp / "local.toml", tmp / "cluster.toml"
        _write_config(local_cfg, mock_url, tmp / "data-local", True)
        _write_config(cluster_cfg, mock_url, tmp / "data-cluster", True)
        with cluster_cfg.open("a") as f:
            f.write(f'\n[cluster]\nbackend = "redis"\nurl = "{redis_url}"\nname = "bench"\n')
        local = _measure(local_cfg, 1, duration, concurrency, single_calls)
        cluster = _measure(cluster_cfg, 1, duration, concurrency, single_calls)
        workers2 = _measure(cluster_cfg, 2, duration, concurrency, 0)
    finally:
        _stop(mock)
        redis.kill()
        redis.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    return {
        "concurrency": concurrency, "duration_s": duration,
        "local": local, "cluster": cluster, "cluster_workers_2": workers2,
        "added_p50_ms": round(cluster["single_p50_ms"] - local["single_p50_ms"], 3),
        "cluster_vs_local_rps": round(cluster["rps"] / local["rps"], 3) if local["rps"] else None,
        "workers2_vs_one_rps": round(workers2["rps"] / cluster["rps"], 3) if cluster["rps"] else None,
    }


def format_report(r: dict[str, Any]) -> str:
    lo, cl, w2 = r["local"], r["cluster"], r["cluster_workers_2"]
    return "\n".join([
        f"cluster bench: {r['concurrency']} keep-alive connections, {r['duration_s']:g} s per round",
        f"  one caller p50:   local {lo['single_p50_ms']:.3f} ms, cluster {cl['single_p50_ms']:.3f} ms "
        f"(added {r['added_p50_ms']:+.3f} ms; target < 0.5)",
        f"  throughput:       local {lo['rps']:.0f} req/s, cluster {cl['rps']:.0f} req/s "
        f"({r['cluster_vs_local_rps']:.0%} of local; target >= 70%)",
        f"  --workers 2:      {w2['rps']:.0f} req/s ({r['workers2_vs_one_rps']:.2f}x one cluster process; target > 1)",
        f"  errors:           local {lo['errors']}, cluster {cl['errors']}, workers {w2['errors']}",
    ])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m agentdeck.bench.cluster", description=__doc__.splitlines()[0])
    p.add_argument("--duration", type=float, default=5.0)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--single-calls", type=int, default=1500)
    p.add_argument("--json", action="store_true")
    a = p.parse_args(argv)
    try:
        r = run_cluster_bench(a.duration, a.concurrency, a.single_calls)
    except AgentdeckError as e:
        print(f"agentdeck: error: {e}", file=sys.stderr)
        return 1
    print(json.dumps(r, indent=2) if a.json else format_report(r))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
