"""`agentdeck bench --scenario cluster` is a bench scenario like the others: it runs end to end and says
in one line what it needs when redis-server is missing (its figures are measured, never asserted)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


def test_bench_scenario_cluster_runs_local_cluster_and_two_workers_side_by_side() -> None:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (.ci/run installs it with apt)")
    r = subprocess.run([sys.executable, "-m", "agentdeck", "bench", "--scenario", "cluster", "--duration", "0.3",
                        "--concurrency", "4", "--rounds", "1", "--json"], capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "Traceback" not in r.stderr
    out = json.loads(r.stdout)
    assert out["concurrency"] == 4 and out["duration_s"] == 0.3
    for mode in ("local", "cluster", "cluster_workers_2"):
        assert out[mode]["rps"] > 0 and out[mode]["errors"] == 0, (mode, out[mode])
    for mode in ("local", "cluster"):  # one caller's latency, over the calls a 0.3 s round scales to
        assert out[mode]["single_p50_ms"] > 0
    assert out["cluster_vs_local_rps"] is not None and out["workers2_vs_one_rps"] is not None


def test_bench_scenario_cluster_without_redis_server_is_one_line(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "agentdeck", "bench", "--scenario", "cluster", "--duration", "0.3"],
                       capture_output=True, text=True, timeout=60, env={**os.environ, "PATH": str(tmp_path)})
    assert r.returncode != 0 and r.stdout == ""
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert "needs redis-server on PATH" in r.stderr
