"""The AIMD control loop: one cut per congestion event, additive recovery, events with reasons."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Callable

from agentdeck.bus import Bus, LimitChanged, ProviderThrottled, Subscription
from agentdeck.config import LimitsConfig
from agentdeck.limits import ProviderLimiter
from agentdeck.bench.virtual_loop import run_virtual

if TYPE_CHECKING:
    from limits_support import FakeClock

MakeLimiter = Callable[..., ProviderLimiter]


def _limit_events(events: Subscription) -> list[LimitChanged]:
    return [e for e in events.drain() if isinstance(e, LimitChanged)]


def test_429_storm_in_one_window_cuts_once(make_limiter: MakeLimiter, clock: FakeClock, events: Subscription) -> None:
    lim = make_limiter(clock=clock, rps=100, slots=100, congestion_window_s=1.0)
    for _ in range(500):  # a storm: 500 429s inside 0.5 s
        lim.observe(429, None)
        clock.advance(0.001)
    assert lim.rps_limit == 70.0 and lim.slots_limit == 70
    assert lim.rate_limited_total == 500
    evs = events.drain()
    limits = [e for e in evs if isinstance(e, LimitChanged)]
    assert [(e.reason, e.rps_limit, e.slots_limit) for e in limits] == [("congestion", 70.0, 70)]
    throttled = [e for e in evs if isinstance(e, ProviderThrottled)]
    assert len(throttled) == 1 and throttled[0].status == 429 and throttled[0].provider == "prov"


def test_one_cut_per_window_while_the_storm_lasts(make_limiter: MakeLimiter, clock: FakeClock, events: Subscription) -> None:
    lim = make_limiter(clock=clock, rps=100, slots=100, congestion_window_s=1.0)
    for _ in range(300):  # 3 s of 429s at 100/s, 529s mixed in
        lim.observe(529 if _ % 7 == 0 else 429, None)
        clock.advance(0.01)
    assert [e.rps_limit for e in _limit_events(events)] == [70.0, 49.0, 34.3]
    assert lim.slots_limit == 34  # floor(100 * .7 * .7 * .7)


def test_cuts_clamp_at_min(make_limiter: MakeLimiter, clock: FakeClock, events: Subscription) -> None:
    lim = make_limiter(clock=clock, rps=10, slots=10, min_rps=4, min_slots=3)
    for _ in range(20):
        lim.observe(429, None)
        clock.advance(1.5)
    assert lim.rps_limit == 4.0 and lim.slots_limit == 3
    evs = _limit_events(events)
    assert [e.rps_limit for e in evs] == [7.0, 4.9, 4.0]
    assert evs[-1].slots_limit == 3  # no further events once both sit at the minimum


def test_429_for_an_attempt_sent_before_the_cut_is_old_news(bus: Bus) -> None:
    """Like TCP's once-per-round-trip: a 429 that answers an attempt paced before the last cut
    says nothing about the new limit, even when it arrives after the window."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        lim = ProviderLimiter("p", LimitsConfig(rps=100, slots=100), bus, clock=loop.time)

        async def attempt(latency: float) -> None:
            await lim.pace()
            await asyncio.sleep(latency)
            lim.observe(429, None)

        slow = asyncio.create_task(attempt(5.0))  # sent at t=0, answers at t=5
        await asyncio.sleep(0.1)
        lim.observe(429, None)  # t=0.1: cut 100 -> 70
        await slow
        assert lim.rps_limit == 70.0  # the late 429 did not cut again
        await attempt(0.0)  # a fresh attempt's 429 does
        assert lim.rps_limit == 49.0
        lim.close()

    run_virtual(main())


def test_calm_restores_increase_per_interval_up_to_max(make_limiter: MakeLimiter, clock: FakeClock, events: Subscription) -> None:
    lim = make_limiter(clock=clock, rps=50, slots=50, max_rps=75, max_slots=80, increase=10, increase_every_s=60)
    lim.observe(429, None)  # 35 / 35
    events.drain()
    seen = []
    for _ in range(60 * 8):  # 8 minutes of successes, one a second
        clock.advance(1.0)
        lim.observe(200, None)
        seen.append((lim.rps_limit, lim.slots_limit))
    evs = _limit_events(events)
    assert all(e.reason == "recovery" for e in evs)
    assert [e.rps_limit for e in evs] == [45.0, 55.0, 65.0, 75.0, 75.0]
    assert [e.slots_limit for e in evs] == [45, 55, 65, 75, 80]
    assert seen[58] == (35.0, 35)  # nothing before 60 s of calm
    assert seen[59] == (45.0, 45)


def test_a_429_resets_the_calm_clock(make_limiter: MakeLimiter, clock: FakeClock) -> None:
    lim = make_limiter(clock=clock, rps=50, slots=50, increase=10, increase_every_s=60, congestion_window_s=1)
    lim.observe(429, None)  # cut at t0: 35
    clock.advance(30)
    lim.observe(429, None)  # t0+30: a new event: 24.5
    clock.advance(45)
    lim.observe(200, None)  # 45 s after the last 429: too early
    assert lim.rps_limit == 24.5
    clock.advance(15)
    lim.observe(200, None)
    assert lim.rps_limit == 34.5


def test_idle_provider_recovers_by_timer_to_its_configured_start(bus: Bus) -> None:
    """No traffic after a cut: one timer (not a poll) brings the limits back to where the
    operator set them, and stops there."""

    async def main() -> list[LimitChanged]:
        loop = asyncio.get_running_loop()
        sub = bus.subscribe("t")
        lim = ProviderLimiter(
            "p", LimitsConfig(rps=50, slots=40, max_rps=500, increase=10, increase_every_s=60), bus, clock=loop.time
        )
        lim.observe(429, None)
        lim.observe(429, None)  # same window: ignored
        await asyncio.sleep(1.0)
        lim.observe(429, None)  # 35 -> 24.5, slots 28 -> 19
        await asyncio.sleep(3600)
        assert (lim.rps_limit, lim.slots_limit) == (50.0, 40)
        assert lim._recovery_timer is None  # nothing left scheduled once back at the start
        lim.close()
        return [e for e in sub.drain() if isinstance(e, LimitChanged)]

    evs = run_virtual(main())
    assert [(e.reason, e.rps_limit, e.slots_limit) for e in evs] == [
        ("congestion", 35.0, 28),
        ("congestion", 24.5, 19),
        ("recovery", 34.5, 29),
        ("recovery", 44.5, 39),
        ("recovery", 50.0, 40),
    ]


def test_recovery_timer_fires_on_schedule(bus: Bus) -> None:
    async def main() -> list[float]:
        loop = asyncio.get_running_loop()
        lim = ProviderLimiter("p", LimitsConfig(rps=50, slots=50, increase=10, increase_every_s=60), bus, clock=loop.time)
        changes: list[float] = []
        lim.observe(429, None)
        for _ in range(4):
            before = lim.rps_limit
            while lim.rps_limit == before and loop.time() < 1000:
                await asyncio.sleep(0.5)
            changes.append(loop.time())
        lim.close()
        return changes

    changes = run_virtual(main())
    assert changes[:2] == [60.0, 120.0]


def test_lowering_the_rate_applies_to_waiting_pacers_at_once(bus: Bus) -> None:
    """A cut while attempts wait for tokens re-times the waiting ones to the new rate."""

    async def main() -> list[float]:
        loop = asyncio.get_running_loop()
        lim = ProviderLimiter("p", LimitsConfig(rps=10, slots=100, min_rps=1), bus, clock=loop.time)
        times: list[float] = []

        async def attempt() -> None:
            await lim.pace()
            times.append(loop.time())

        tasks = [asyncio.create_task(attempt()) for _ in range(21)]
        await asyncio.sleep(1.05)  # 1 + 10 tokens handed out at 10/s
        lim.observe(429, None)  # 10 -> 7/s from here
        await asyncio.gather(*tasks)
        lim.close()
        return times

    times = run_virtual(main())
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert [round(g, 6) for g in gaps[:10]] == [0.1] * 10
    assert [round(g, 6) for g in gaps[11:]] == [round(1 / 7, 6)] * 9  # the new rate, no burst after the cut  # the new rate, no burst after the cut
