"""The AIMD control-loop benchmark: does the limit find a provider's real capacity?

Why a discrete-event simulation: the question is about minutes of traffic against a
provider that answers 429 above N requests/s. The real ``ProviderLimiter`` (slots, pacing,
AIMD, timers) and ``RetryPolicy`` run unchanged on a ``VirtualTimeLoop``, so three minutes
of simulated traffic take a second or two and give the same numbers on every run (seeded).

``bench_limiter_overhead`` is the other half of the issue: what the limiter costs on the
real clock, on versus disabled.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from agentdeck.bus import Bus
from agentdeck.config import LimitsConfig, RetryConfig
from agentdeck.limits.limiter import ProviderLimiter, Throttled
from agentdeck.limits.retry import RetryPolicy
from agentdeck.limits.virtual_loop import VirtualTimeLoop

#: AIMD settings the scenario uses unless told otherwise; see docs/sections/limits.md for why.
RECOMMENDED_DECREASE = 0.85
RECOMMENDED_INCREASE_SHARE = 0.05
RECOMMENDED_INCREASE_EVERY_S = 10.0


def recommended_limits(n_limit: float, *, start_rps: float | None = None, latency_s: float = 1.0) -> LimitsConfig:
    """The config the simulation runs by default for a provider whose real limit is about N/s.

    Same x0.7 cut as the contract default; a faster, smaller additive step (5% of N every
    10 s instead of +10 every 60 s) so the sawtooth spends more time near N; slots sized
    at 2x the in-flight calls the rate needs (rate x latency) so the rate, not the slot
    pool, is what the 429s steer.
    """
    start = 2.0 * n_limit if start_rps is None else start_rps
    return LimitsConfig(
        rps=start,
        slots=max(1, int(math.ceil(2.0 * start * latency_s))),
        min_rps=1.0,
        min_slots=1,
        max_rps=max(500.0, 4.0 * n_limit),
        max_slots=max(500, int(math.ceil(8.0 * n_limit * latency_s))),
        decrease=RECOMMENDED_DECREASE,
        increase=max(1.0, round(RECOMMENDED_INCREASE_SHARE * n_limit)),
        increase_every_s=RECOMMENDED_INCREASE_EVERY_S,
        max_queue_wait_s=10.0,
        congestion_window_s=1.0,
    )


def contract_limits(n_limit: float, *, start_rps: float | None = None, latency_s: float = 1.0) -> LimitsConfig:
    """The contract's AIMD defaults (x0.7, +10 every 60 s) with the same start and slot sizing."""
    rec = recommended_limits(n_limit, start_rps=start_rps, latency_s=latency_s)
    return rec.model_copy(update={"decrease": 0.7, "increase": 10.0, "increase_every_s": 60.0})


@dataclass(slots=True)
class _Provider:
    """Answers 429 once N calls were admitted in the last second (sliding window)."""

    n_limit: float
    clock: Any
    admitted: deque[float] = field(default_factory=deque)

    def admit(self) -> bool:
        now = self.clock()
        q = self.admitted
        while q and q[0] <= now - 1.0:
            q.popleft()
        if len(q) < self.n_limit:
            q.append(now)
            return True
        return False


@dataclass(slots=True)
class _Counters:
    ok: int = 0
    upstream: int = 0
    upstream_429: int = 0
    throttled: int = 0
    gave_up: int = 0
    offered: int = 0
    max_in_flight: int = 0


async def _scenario(
    n_limit: float,
    offered_rps: float,
    duration_s: float,
    limits: LimitsConfig,
    retry: RetryConfig,
    latency_s: float,
    latency_sigma: float,
    seed: int,
    sample_every_s: float,
) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    clock = loop.time
    t0 = clock()
    rng = random.Random(seed)
    bus = Bus()
    events = bus.subscribe("bench", maxlen=1_000_000, types={"limit"})
    lim = ProviderLimiter("sim", limits, bus, clock=clock, wall_clock=lambda: 1_700_000_000.0 + clock())
    policy = RetryPolicy(retry, rng=random.Random(seed + 1), wall_clock=lambda: 1_700_000_000.0 + clock())
    provider = _Provider(n_limit, clock)
    c = _Counters()
    mu = math.log(latency_s)
    rl_headers = {"retry-after": "1"}
    ok_times: list[float] = []
    r429_times: list[float] = []
    up_times: list[float] = []
    tasks: set[asyncio.Task[None]] = set()

    async def one_request() -> None:
        start = clock()
        try:
            async with lim.slot():
                attempt = 0
                while True:
                    await lim.pace()
                    c.upstream += 1
                    up_times.append(clock())
                    if lim.in_flight > c.max_in_flight:
                        c.max_in_flight = lim.in_flight
                    if provider.admit():
                        await asyncio.sleep(rng.lognormvariate(mu, latency_sigma))
                        lim.observe(200, None)
                        c.ok += 1
                        ok_times.append(clock())
                        return
                    await asyncio.sleep(0.03 + 0.02 * rng.random())
                    c.upstream_429 += 1
                    r429_times.append(clock())
                    lim.observe(429, rl_headers)
                    wait = policy.next_delay(attempt, status=429, headers=rl_headers, elapsed_s=clock() - start)
                    if wait is None:
                        c.gave_up += 1
                        return
                    attempt += 1
                    await asyncio.sleep(wait)
        except Throttled:
            c.throttled += 1

    def spawn() -> None:
        t = loop.create_task(one_request())
        tasks.add(t)
        t.add_done_callback(tasks.discard)

    series: list[dict[str, float]] = []

    async def sampler() -> None:
        while True:
            now = clock() - t0
            series.append(
                {
                    "t": round(now, 3),
                    "rps_limit": lim.rps_limit,
                    "slots_limit": float(lim.slots_limit),
                    "in_flight": float(lim.in_flight),
                    "queued": float(lim.queued),
                }
            )
            await asyncio.sleep(sample_every_s)

    sampler_task = loop.create_task(sampler())
    # Poisson arrivals, released in 10 ms ticks (the simulation's cost is per distinct
    # timestamp, and 10 ms is far below anything the control loop reacts to)
    end = t0 + duration_s
    tick = 0.01
    next_arrival = t0 + rng.expovariate(offered_rps)
    now = t0
    while now < end:
        now = min(end, now + tick)
        while next_arrival <= now:
            c.offered += 1
            spawn()
            next_arrival += rng.expovariate(offered_rps)
        await asyncio.sleep(max(0.0, now - clock()))
    sampler_task.cancel()
    for t in list(tasks):
        t.cancel()
    await asyncio.gather(*tasks, sampler_task, return_exceptions=True)
    lim.close()
    limit_events = events.drain()

    return _summarise(n_limit, offered_rps, duration_s, t0, c, series, ok_times, r429_times, up_times, limits, limit_events)


def _per_second(times: list[float], t0: float, duration_s: float) -> list[int]:
    buckets = [0] * int(math.ceil(duration_s))
    for t in times:
        i = int(t - t0)
        if 0 <= i < len(buckets):
            buckets[i] += 1
    return buckets


def _summarise(
    n_limit: float,
    offered_rps: float,
    duration_s: float,
    t0: float,
    c: _Counters,
    series: list[dict[str, float]],
    ok_times: list[float],
    r429_times: list[float],
    up_times: list[float],
    limits: LimitsConfig,
    limit_events: list[Any],
) -> dict[str, Any]:
    lo, hi = 0.7 * n_limit, 1.3 * n_limit
    settle: float | None = None
    for s in reversed(series):
        if lo <= s["rps_limit"] <= hi:
            settle = s["t"]
        else:
            break
    ok_s = _per_second(ok_times, t0, duration_s)
    r429_s = _per_second(r429_times, t0, duration_s)
    for s in series:
        i = int(s["t"])
        s["goodput"] = float(ok_s[i]) if i < len(ok_s) else 0.0
        s["r429"] = float(r429_s[i]) if i < len(r429_s) else 0.0
    # goodput after the limit settled (the steady state the target is about), and overall;
    # the last few seconds are left out because requests still in flight there are cut off
    tail = max(1, int(math.ceil(2.0 * 1.0)))
    steady_from = int(settle) if settle is not None else len(ok_s)
    steady = ok_s[steady_from : len(ok_s) - tail]
    goodput_steady = (sum(steady) / len(steady)) if steady else 0.0
    whole = ok_s[: len(ok_s) - tail]
    goodput_all = sum(whole) / len(whole) if whole else 0.0
    rps_values = [s["rps_limit"] for s in series if settle is not None and s["t"] >= settle]
    return {
        "n_limit": n_limit,
        "offered_rps": offered_rps,
        "duration_s": duration_s,
        "config": {
            "rps": limits.rps,
            "slots": limits.slots,
            "decrease": limits.decrease,
            "increase": limits.increase,
            "increase_every_s": limits.increase_every_s,
            "congestion_window_s": limits.congestion_window_s,
            "max_queue_wait_s": limits.max_queue_wait_s,
        },
        "settle_time_s": settle,
        "settled_within_2min": settle is not None and settle <= 120.0,
        "goodput_rps": round(goodput_steady, 2),
        "goodput_ratio": round(goodput_steady / n_limit, 4),
        "goodput_ratio_whole_run": round(goodput_all / n_limit, 4),
        "upstream_calls": c.upstream,
        "upstream_429": c.upstream_429,
        "share_429": round(c.upstream_429 / c.upstream, 4) if c.upstream else 0.0,
        "offered": c.offered,
        "succeeded": c.ok,
        "throttled_by_gateway": c.throttled,
        "gave_up_after_retries": c.gave_up,
        "max_in_flight": c.max_in_flight,
        "limit_changes": len(limit_events),
        "cuts": sum(1 for e in limit_events if e.reason == "congestion"),
        "mean_rps_limit_after_settle": round(sum(rps_values) / len(rps_values), 2) if rps_values else None,
        "series": series,
        "passed": bool(
            settle is not None
            and settle <= 120.0
            and goodput_steady >= 0.85 * n_limit
            and c.upstream
            and c.upstream_429 / c.upstream < 0.05
        ),
    }


def run_aimd_scenario(
    n_limit: float = 100.0,
    offered_rps: float = 300.0,
    duration_s: float = 180.0,
    *,
    limits: LimitsConfig | None = None,
    retry: RetryConfig | None = None,
    latency_s: float = 0.8,
    latency_sigma: float = 0.5,
    seed: int = 7,
    sample_every_s: float = 1.0,
) -> dict[str, Any]:
    """Simulate ``duration_s`` of Poisson traffic at ``offered_rps`` through one limiter to a
    provider that 429s above ``n_limit`` calls in any 1 s window.

    Successful calls take a lognormal latency (median ``latency_s``); 429s come back in
    30-50 ms with ``retry-after: 1``; the gateway retries per ``RetryPolicy`` inside the slot.
    Returns the settle time (from when on the rps limit stays within +-30% of N), goodput
    after settling as a share of N, the share of upstream calls that were 429s, and a
    per-second series.
    """
    cfg = limits or recommended_limits(n_limit, latency_s=latency_s)
    rc = retry or RetryConfig()
    loop = VirtualTimeLoop()
    try:
        return loop.run_until_complete(
            _scenario(n_limit, offered_rps, duration_s, cfg, rc, latency_s, latency_sigma, seed, sample_every_s)
        )
    finally:
        loop.close()


def _text_plot(series: list[dict[str, float]], n_limit: float, width: int = 72, height: int = 12) -> str:
    """The rps limit over time as block characters, with N and the +-30% band marked."""
    if not series:
        return "(no samples)"
    values = [s["rps_limit"] for s in series]
    goodput = [s.get("goodput", 0.0) for s in series]
    top = max(max(values), 1.3 * n_limit) * 1.05
    cols = min(width, len(values))
    per = len(values) / cols
    col_v = [max(values[int(i * per) : max(int((i + 1) * per), int(i * per) + 1)]) for i in range(cols)]
    col_g = [
        sum(goodput[int(i * per) : max(int((i + 1) * per), int(i * per) + 1)])
        / max(1, len(goodput[int(i * per) : max(int((i + 1) * per), int(i * per) + 1)]))
        for i in range(cols)
    ]
    rows = []
    for r in range(height, 0, -1):
        y_hi = top * r / height
        y_lo = top * (r - 1) / height
        line = []
        for v, g in zip(col_v, col_g):
            if v >= y_hi:
                ch = "█"
            elif v > y_lo:
                ch = "▄" if v - y_lo >= (y_hi - y_lo) / 2 else "▁"
            elif y_lo <= g < y_hi:
                ch = "·"
            elif y_lo <= n_limit < y_hi:
                ch = "-"
            else:
                ch = " "
            line.append(ch)
        label = f"{y_hi:7.0f} |"
        if y_lo <= n_limit < y_hi:
            label = f"{y_hi:7.0f} N"
        rows.append(label + "".join(line))
    t_end = series[-1]["t"]
    rows.append(" " * 8 + "+" + "-" * cols)
    rows.append(" " * 9 + "0s" + " " * max(1, cols - 2 - len(f"{t_end:.0f}s")) + f"{t_end:.0f}s")
    rows.append(" " * 9 + "█ rps limit   · goodput/s   - N (provider's real limit)")
    return "\n".join(rows)


def format_aimd_report(result: dict[str, Any]) -> str:
    """A short human report of one ``run_aimd_scenario`` result, with a text plot."""
    n = result["n_limit"]
    cfg = result["config"]
    settle = result["settle_time_s"]
    ok = "PASS" if result["passed"] else "FAIL"
    lines = [
        f"AIMD control loop vs a provider that 429s above N={n:g} req/s (sliding 1 s window)",
        f"offered {result['offered_rps']:g} req/s for {result['duration_s']:g} s simulated; "
        f"start rps={cfg['rps']:g} slots={cfg['slots']}; x{cfg['decrease']:g} on 429, "
        f"+{cfg['increase']:g} every {cfg['increase_every_s']:g} s",
        "",
        _text_plot(result["series"], n),
        "",
        f"  settle time (limit stays within +-30% of N): "
        + (f"{settle:.0f} s" if settle is not None else "never")
        + ("   [target <= 120 s]"),
        f"  goodput after settling: {result['goodput_rps']:.1f} req/s = {100 * result['goodput_ratio']:.1f}% of N"
        f"   [target >= 85%]  (whole run {100 * result['goodput_ratio_whole_run']:.1f}%)",
        f"  upstream 429s: {result['upstream_429']} of {result['upstream_calls']} calls = "
        f"{100 * result['share_429']:.2f}%   [target < 5%]",
        f"  mean rps limit after settling: {result['mean_rps_limit_after_settle']}; "
        f"{result['cuts']} cuts, {result['limit_changes']} limit changes",
        f"  gateway 429s to callers (queue wait > {cfg['max_queue_wait_s']:g} s): {result['throttled_by_gateway']} of "
        f"{result['offered']} offered; max in flight {result['max_in_flight']}",
        f"  result: {ok}",
    ]
    return "\n".join(lines)


async def _overhead_cycles(lim: ProviderLimiter, cycles: int) -> float:
    t = time.perf_counter()
    for _ in range(cycles):
        async with lim.slot():
            await lim.pace()
    return time.perf_counter() - t


async def _overhead_concurrent(lim: ProviderLimiter, requests: int, workers: int, work_s: float) -> float:
    """``workers`` tasks share ``requests`` calls of ``work_s`` each, through the limiter."""
    left = requests

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            async with lim.slot():
                await lim.pace()
                await asyncio.sleep(work_s)

    t = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(workers)))
    return requests / (time.perf_counter() - t)


def bench_limiter_overhead(cycles: int = 20_000, *, rounds: int = 5, concurrent_requests: int = 5_000) -> dict[str, Any]:
    """Real-clock cost of the limiter: slot + pace, enabled versus disabled.

    Two measurements: (1) ``cycles`` uncontended acquire/pace/release cycles in a tight loop
    (best of ``rounds``), giving microseconds per request; (2) 1,000 req/s-class load: 64
    concurrent workers doing slot+pace+1 ms of simulated upstream work, throughput on vs off.
    Limits on are set high enough never to bind, so the difference is pure overhead.
    """
    on_cfg = LimitsConfig(rps=1e6, slots=100_000, max_rps=1e7, max_slots=1_000_000)
    off_cfg = on_cfg.model_copy(update={"enabled": False})

    async def main() -> dict[str, Any]:
        bus = Bus()
        on = ProviderLimiter("on", on_cfg, bus)
        off = ProviderLimiter("off", off_cfg, bus)
        best_on = best_off = math.inf
        for _ in range(rounds):
            best_off = min(best_off, await _overhead_cycles(off, cycles))
            best_on = min(best_on, await _overhead_cycles(on, cycles))
        thr_on = thr_off = 0.0
        for _ in range(2):
            thr_off = max(thr_off, await _overhead_concurrent(off, concurrent_requests, 64, 0.001))
            thr_on = max(thr_on, await _overhead_concurrent(on, concurrent_requests, 64, 0.001))
        on.close()
        off.close()
        us_on = best_on / cycles * 1e6
        us_off = best_off / cycles * 1e6
        return {
            "cycles": cycles,
            "us_per_request_on": round(us_on, 3),
            "us_per_request_off": round(us_off, 3),
            "overhead_us": round(us_on - us_off, 3),
            # at 1,000 req/s each request has a 1,000 us share of one core
            "share_of_1000rps_budget": round(max(0.0, us_on - us_off) / 1000.0, 5),
            "concurrent_rps_on": round(thr_on, 1),
            "concurrent_rps_off": round(thr_off, 1),
            "concurrent_throughput_cost": round(max(0.0, 1.0 - thr_on / thr_off), 4) if thr_off else 0.0,
        }

    return asyncio.run(main())


def format_overhead_report(result: dict[str, Any]) -> str:
    return "\n".join(
        [
            f"limiter overhead, real clock ({result['cycles']} uncontended slot+pace cycles, best of rounds)",
            f"  on:  {result['us_per_request_on']:.2f} us/request   off: {result['us_per_request_off']:.2f} us/request"
            f"   -> +{result['overhead_us']:.2f} us = {100 * result['share_of_1000rps_budget']:.2f}% of a request's budget at 1,000 req/s",
            f"  64 workers x 1 ms upstream: {result['concurrent_rps_on']:.0f} req/s on vs {result['concurrent_rps_off']:.0f} req/s off"
            f" -> {100 * result['concurrent_throughput_cost']:.1f}% throughput cost   [target <= 5%]",
        ]
    )
