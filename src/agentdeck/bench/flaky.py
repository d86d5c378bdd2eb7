"""Benchmark: the runner against plain `pytest` reruns of a 200-test suite, on the same cores.

Measured side by side in one call (never a timed test):

- ``plain``: ``runs`` plain ``python -m pytest`` runs of the suite, ``workers`` at a time;
- ``fork``: the runner's same-order runs with the fork-after-collection engine;
- ``subprocess``: the same with a fresh pytest process per run (the other engine);
- ``diagnosis``: the whole diagnosis with the fork engine (same-order, shuffled and isolated
  runs, the candidates alone, bisection and perturbations);
- ``diagnosis_base``: the same without the timing experiments issue 18 added (the
  stretched-time perturbation and the shrunk-time / other-timezone replays of a failing
  seed), so their cost is measured, not guessed;
- ``hunt``: the whole diagnosis plus hunt mode (every test under every stress).

The suite has 200 quick tests, five of them with a known problem (two unseeded-random
tests, a victim and its polluter, and an asyncio deadline raced by a random delay), so the
diagnosis has real work to do.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from agentdeck.flaky.runner import FlakyOptions, run_flaky

TESTS_PER_FILE = 20


SPECIAL = (  # (fraction of the way through the suite, test source)
    (0.05, "def test_retry_jitter_in_bounds():\n    import random\n    assert random.random() < 0.9\n"),
    (0.30, "def test_cache_starts_empty():\n    import bench_state\n    assert bench_state.CACHE == {}\n"),
    (0.60, "def test_sample_has_no_zero():\n    import random\n    assert 0 not in random.sample(range(50), 3)\n"),
    (
        0.85,
        "def test_cache_warmup():\n    import bench_state\n    bench_state.CACHE['k'] = 1\n    assert bench_state.CACHE\n",
    ),
    (
        0.95,
        "def test_quote_beats_its_deadline():\n    import asyncio, random\n"
        "    delay = 0.1 if random.random() < 0.2 else 0.001\n"
        "    asyncio.run(asyncio.wait_for(asyncio.sleep(delay), timeout=0.05))\n",
    ),
)


def make_suite(root: Path, n_tests: int = 200) -> Path:
    """Write the benchmark suite: quick arithmetic/string tests, plus four with a known problem."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "pytest.ini").write_text("[pytest]\naddopts = -p no:cacheprovider\n")
    (root / "bench_state.py").write_text("CACHE: dict[str, int] = {}\n")
    special = {int(frac * n_tests): src for frac, src in SPECIAL} if n_tests >= 8 else {}
    bodies = [
        special.get(i)
        or (f"def test_q{i}():\n    assert sum(range({i})) == {sum(range(i))}\n    assert 'x{i}'.upper() == 'X{i}'\n")
        for i in range(n_tests)
    ]
    for f in range(0, n_tests, TESTS_PER_FILE):
        text = '"""Quick tests for the flaky-runner benchmark."""\n\n\n' + "\n\n".join(bodies[f : f + TESTS_PER_FILE])
        (root / f"test_bench_{f // TESTS_PER_FILE:02d}.py").write_text(text)
    return root


class _Meter:
    """Wall time and CPU time (this process plus every finished descendant) of one measurement.

    CPU time does not depend on what else the machine is doing; on a shared machine it is the
    steadier of the two. Forked runs are reaped by the fork server, which we reap, so their
    CPU is counted too.
    """

    def __enter__(self) -> _Meter:
        self.wall0 = time.perf_counter()
        self.cpu0 = _cpu()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.wall0
        self.cpu = _cpu() - self.cpu0


def _cpu() -> float:
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _plain_runs(suite: Path, runs: int, workers: int, env: dict[str, str]) -> float:
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly"]

    def one(_: int) -> int:
        return subprocess.run(cmd, cwd=suite, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        codes = list(pool.map(one, range(runs)))
    elapsed = time.perf_counter() - started
    if any(c not in (0, 1) for c in codes):
        raise RuntimeError(f"plain pytest runs failed to run: exit codes {sorted(set(codes))}")
    return elapsed


def bench_flaky(
    n_tests: int = 200,
    runs: int = 50,
    workers: int | None = None,
    lean: bool = False,
    engines: tuple[str, ...] = ("fork", "subprocess"),
    diagnose: bool = True,
    seed: int = 1,
    hunt: bool = True,
) -> dict[str, Any]:
    """Time the engines and the full diagnosis against plain reruns; return seconds and ratios.

    ``lean`` runs every pytest process without auto-loaded third-party plugins
    (PYTEST_DISABLE_PLUGIN_AUTOLOAD=1), which makes start-up cheap and the comparison with
    plain reruns harder for the runner.
    """
    workers = workers or os.cpu_count() or 1
    tmp = Path(tempfile.mkdtemp(prefix="agentdeck-flaky-bench-"))
    env = dict(os.environ)
    if lean:
        env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    saved = {k: os.environ.get(k) for k in ("PYTEST_DISABLE_PLUGIN_AUTOLOAD",)}
    try:
        suite = make_suite(tmp / "suite", n_tests)
        os.environ.update({k: v for k, v in env.items() if k == "PYTEST_DISABLE_PLUGIN_AUTOLOAD"})
        result: dict[str, Any] = {
            "tests": n_tests,
            "runs": runs,
            "workers": workers,
            "lean": lean,
            "python": sys.version.split()[0],
        }
        plain = []
        with _Meter() as m:
            _plain_runs(suite, runs, workers, env)
        plain.append(m)
        for engine in engines:
            with _Meter() as m:
                report = run_flaky(
                    FlakyOptions(
                        project_dir=suite, runs=runs, workers=workers, diagnose=False, engine=engine, seed=seed
                    )
                )
            result[f"{engine}_s"], result[f"{engine}_cpu_s"] = round(m.wall, 3), round(m.cpu, 3)
            result[f"{engine}_flaky_found"] = report.count("flaky")
        if diagnose:
            with _Meter() as m:
                base = run_flaky(
                    FlakyOptions(
                        project_dir=suite, runs=runs, workers=workers, diagnose=True, seed=seed, timing_follow_ups=False
                    )
                )
            result["diagnosis_base_s"], result["diagnosis_base_cpu_s"] = round(m.wall, 3), round(m.cpu, 3)
            result["diagnosis_base_found"] = {
                t.nodeid.split("::")[-1]: t.root_cause for t in base.tests if t.verdict != "stable"
            }
            with _Meter() as m:
                report = run_flaky(
                    FlakyOptions(project_dir=suite, runs=runs, workers=workers, diagnose=True, seed=seed)
                )
            result["diagnosis_s"], result["diagnosis_cpu_s"] = round(m.wall, 3), round(m.cpu, 3)
            result["diagnosis_phases_s"] = {k: round(v, 2) for k, v in report.phases.items()}
            result["diagnosis_found"] = {
                t.nodeid.split("::")[-1]: t.root_cause for t in report.tests if t.verdict != "stable"
            }
            result["timing_overhead"] = round(result["diagnosis_s"] / result["diagnosis_base_s"], 3)
            result["timing_overhead_cpu"] = round(result["diagnosis_cpu_s"] / result["diagnosis_base_cpu_s"], 3)
            if hunt:
                with _Meter() as m:
                    hunted = run_flaky(
                        FlakyOptions(
                            project_dir=suite, runs=runs, workers=workers, diagnose=True, seed=seed, hunt=True,
                            budget_s=3600,
                        )
                    )
                result["hunt_s"], result["hunt_cpu_s"] = round(m.wall, 3), round(m.cpu, 3)
                result["hunt_rounds"] = hunted.hunt.rounds if hunted.hunt else 0
                result["hunt_phase_s"] = round(hunted.phases.get("hunt", 0.0), 2)
                result["hunt_vs_diagnosis"] = round(result["hunt_s"] / result["diagnosis_s"], 3)
                result["hunt_vs_diagnosis_cpu"] = round(result["hunt_cpu_s"] / result["diagnosis_cpu_s"], 3)
                result["hunt_latent"] = [
                    t.nodeid.split("::")[-1] for t in hunted.tests if t.latent
                ]
        with _Meter() as m:  # plain again, last: the load on a shared machine drifts; average both rounds
            _plain_runs(suite, runs, workers, env)
        plain.append(m)
        result["plain_s"] = round(sum(p.wall for p in plain) / len(plain), 3)
        result["plain_cpu_s"] = round(sum(p.cpu for p in plain) / len(plain), 3)
        result["plain_rounds_s"] = [round(p.wall, 2) for p in plain]
        measured = [*engines, *(("diagnosis_base", "diagnosis") if diagnose else ()), *(("hunt",) if diagnose and hunt else ())]
        for name in measured:
            result[f"{name}_ratio"] = round(result[f"{name}_s"] / result["plain_s"], 3)
            result[f"{name}_cpu_ratio"] = round(result[f"{name}_cpu_s"] / result["plain_cpu_s"], 3)
        return result
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        shutil.rmtree(tmp, ignore_errors=True)


def format_flaky_report(r: dict[str, Any]) -> str:
    lines = [
        f"flaky-runner benchmark: {r['tests']} quick tests, {r['runs']} runs, {r['workers']} workers"
        + (" (lean: no auto-loaded pytest plugins)" if r.get("lean") else "")
        + f", Python {r['python']}",
        f"  {'':24}{'wall':>9}  {'ratio':>6}   {'cpu':>9}  {'ratio':>6}",
        f"  {'plain pytest reruns':24}{r['plain_s']:8.2f}s  {1:6.2f}x  {r['plain_cpu_s']:8.2f}s  {1:6.2f}x"
        f"   (two rounds: {', '.join(f'{x:.1f}s' for x in r['plain_rounds_s'])})",
    ]
    for name, label, target in (
        ("fork", "same-order, fork", "<= 1.2x"),
        ("subprocess", "same-order, subprocess", "<= 1.2x"),
        ("diagnosis_base", "diagnosis, old timing", "<= 3x"),
        ("diagnosis", "full diagnosis (fork)", "<= 3x"),
        ("hunt", "diagnosis + hunt mode", "<= 5x the diagnosis"),
    ):
        if f"{name}_s" in r:
            lines.append(
                f"  {label:24}{r[f'{name}_s']:8.2f}s  {r[f'{name}_ratio']:6.2f}x  {r[f'{name}_cpu_s']:8.2f}s  "
                f"{r[f'{name}_cpu_ratio']:6.2f}x   (target {target})"
            )
    if "timing_overhead" in r:
        lines.append(
            f"    the new timing experiments: {r['timing_overhead']:.2f}x the diagnosis without them "
            f"(cpu {r['timing_overhead_cpu']:.2f}x; target <= 1.2x)"
        )
    if "hunt_s" in r:
        lines.append(
            f"    hunt mode: {r['hunt_vs_diagnosis']:.2f}x the diagnosis (cpu {r['hunt_vs_diagnosis_cpu']:.2f}x; "
            f"target <= 5x), {r['hunt_rounds']} rounds in {r['hunt_phase_s']:.1f}s, latent: "
            f"{', '.join(r['hunt_latent']) or 'none'}"
        )
    if "diagnosis_s" in r:
        phases = ", ".join(f"{k} {v:.1f}s" for k, v in r["diagnosis_phases_s"].items())
        lines.append(f"    diagnosis phases: {phases}")
        found = ", ".join(f"{k}: {v}" for k, v in r["diagnosis_found"].items())
        lines.append(f"    found: {found}")
    if "diagnosis_base_found" in r:
        found = ", ".join(f"{k}: {v}" for k, v in r["diagnosis_base_found"].items())
        lines.append(f"    found without the new timing experiments: {found}")
    return "\n".join(lines)
