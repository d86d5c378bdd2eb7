"""The AIMD benchmark scenario (simulated clock) and the virtual-time loop under it."""

from __future__ import annotations

import asyncio
import time

import pytest

from agentdeck.bench.aimd import (
    bench_limiter_overhead,
    contract_limits,
    format_aimd_report,
    format_overhead_report,
    run_aimd_scenario,
)
from agentdeck.bench.virtual_loop import SimulationStalled, run_virtual


def test_virtual_loop_skips_time_without_sleeping() -> None:
    async def main() -> float:
        loop = asyncio.get_running_loop()
        await asyncio.gather(asyncio.sleep(3600), asyncio.sleep(7200))
        return loop.time()

    wall = time.perf_counter()
    assert run_virtual(main()) == pytest.approx(7200.0)
    assert time.perf_counter() - wall < 1.0


def test_virtual_loop_reports_a_deadlock() -> None:
    async def main() -> None:
        await asyncio.get_running_loop().create_future()  # nothing will ever resolve it

    with pytest.raises(SimulationStalled):
        run_virtual(main(), stall_timeout_s=0.05)


def test_aimd_scenario_meets_the_targets() -> None:
    r = run_aimd_scenario(n_limit=30.0, offered_rps=90.0, duration_s=150.0, compare_contract_defaults=False, measure_overhead=False)
    assert r["settle_time_s"] is not None and r["settle_time_s"] <= 120.0
    assert r["goodput_ratio"] >= 0.85
    assert r["share_429"] < 0.05
    assert r["passed"] is True
    assert r["cuts"] >= 2  # it really found the limit by 429s, more than once
    assert r["max_in_flight"] <= r["config"]["slots"]
    assert len(r["series"]) >= 149
    report = format_aimd_report(r)
    assert "PASS" in report and ("▀" in report or "▄" in report)


def test_aimd_scenario_with_the_contract_defaults_still_settles_without_429_storms() -> None:
    r = run_aimd_scenario(
        n_limit=30.0, offered_rps=90.0, duration_s=150.0,
        limits=contract_limits(30.0, latency_s=0.8), compare_contract_defaults=False, measure_overhead=False,
    )
    assert r["config"]["decrease"] == 0.7 and r["config"]["increase_every_s"] == 60.0
    assert r["settle_time_s"] is not None and r["settle_time_s"] <= 120.0
    assert r["share_429"] < 0.05
    assert r["goodput_ratio"] >= 0.75  # about 0.85 N on average: the sawtooth of a x0.7 cut


def test_overhead_bench_reports_on_and_off() -> None:
    r = bench_limiter_overhead(cycles=2_000, rounds=1, concurrent_requests=300)
    assert r["us_per_request_on"] > 0 and r["us_per_request_off"] > 0
    assert r["concurrent_cpu_us_on"] > 0 and r["concurrent_cpu_us_off"] > 0
    assert "1,000 req/s" in format_overhead_report(r)
