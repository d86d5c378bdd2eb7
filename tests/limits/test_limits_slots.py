"""The in-flight slot pool: FIFO, never over the limit, returned on every exit path."""

from __future__ import annotations

import asyncio
from typing import Callable

import pytest

from agentdeck.bus import Bus
from agentdeck.config import LimitsConfig
from agentdeck.limits import ProviderLimiter, Throttled
from agentdeck.bench.virtual_loop import run_virtual

MakeLimiter = Callable[..., ProviderLimiter]


async def test_waiters_get_slots_in_arrival_order(make_limiter: MakeLimiter) -> None:
    lim = make_limiter(slots=1, max_queue_wait_s=30)
    order: list[int] = []
    gate = asyncio.Event()

    async def holder() -> None:
        async with lim.slot():
            await gate.wait()

    async def waiter(i: int) -> None:
        async with lim.slot():
            order.append(i)
            await asyncio.sleep(0)

    h = asyncio.create_task(holder())
    await asyncio.sleep(0)
    tasks = []
    for i in range(50):
        tasks.append(asyncio.create_task(waiter(i)))
        await asyncio.sleep(0)  # each one queued before the next arrives
    assert lim.queued == 50
    gate.set()
    await asyncio.gather(h, *tasks)
    assert order == list(range(50))
    assert lim.in_flight == 0 and lim.queued == 0


async def test_2000_concurrent_never_exceed_slots_limit(make_limiter: MakeLimiter) -> None:
    lim = make_limiter(slots=37, rps=1e6, max_rps=1e7, max_queue_wait_s=60)
    peak = 0
    current = 0

    async def request(i: int) -> None:
        nonlocal peak, current
        async with lim.slot():
            await lim.pace()
            current += 1
            peak = max(peak, current)
            assert lim.in_flight <= lim.slots_limit
            await asyncio.sleep(0.0005 * (i % 3))
            current -= 1

    await asyncio.wait_for(asyncio.gather(*(request(i) for i in range(2000))), 30)
    assert peak == 37  # the pool was actually full, and never more
    assert lim.in_flight == 0 and lim.queued == 0


def test_throttled_after_max_queue_wait_with_retry_after_at_most_60s(bus: Bus) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        lim = ProviderLimiter("p", LimitsConfig(slots=2, rps=1.0, min_rps=0.5, max_queue_wait_s=10), bus, clock=loop.time)
        hold = asyncio.Event()

        async def holder() -> None:
            async with lim.slot():
                await hold.wait()

        holders = [asyncio.create_task(holder()) for _ in range(2)]
        await asyncio.sleep(0)
        start = loop.time()

        async def late() -> float:
            try:
                async with lim.slot():
                    raise AssertionError("no slot should have been granted")
            except Throttled as e:
                assert loop.time() - start == pytest.approx(10.0)
                return e.retry_after_s

        waits = await asyncio.gather(*(late() for _ in range(200)))
        assert all(0 < w <= 60 for w in waits)
        assert waits == [60.0] * 200  # nothing drained during the wait: the longest hint
        assert lim.throttled_total == 200
        assert lim.queued == 0 and lim.in_flight == 2
        hold.set()
        await asyncio.gather(*holders)
        assert lim.in_flight == 0
        lim.close()

    run_virtual(main())


def test_retry_after_follows_the_observed_drain_rate(bus: Bus) -> None:
    """One slot, each call holds it 0.5 s (2/s drain); 40 callers queue, max wait 10 s: the
    ~20 that are turned away are told to come back when their turn in line would come."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        lim = ProviderLimiter("p", LimitsConfig(slots=1, max_queue_wait_s=10), bus, clock=loop.time)
        hints: list[float] = []

        async def call() -> None:
            try:
                async with lim.slot():
                    await asyncio.sleep(0.5)
            except Throttled as e:
                hints.append(e.retry_after_s)

        await asyncio.gather(*(call() for _ in range(40)))
        assert 15 <= len(hints) <= 25
        assert hints == sorted(hints)  # later in line, later back
        assert hints[0] >= 1.0 and hints[-1] <= 20.0
        assert hints[-1] == pytest.approx(len(hints) / 2.0, rel=0.2)
        lim.close()

    run_virtual(main())


def test_throttled_headers() -> None:
    e = Throttled(2.5, "anthropic")
    assert e.headers() == {"retry-after-ms": "2500", "retry-after": "3"}
    assert Throttled(500.0).retry_after_s == 60.0


async def test_zero_queue_wait_throttles_at_once(make_limiter: MakeLimiter) -> None:
    lim = make_limiter(slots=1, max_queue_wait_s=0)
    async with lim.slot():
        with pytest.raises(Throttled):
            async with lim.slot():
                pass
    assert lim.throttled_total == 1 and lim.in_flight == 0


async def test_slot_returned_when_body_raises(make_limiter: MakeLimiter) -> None:
    lim = make_limiter(slots=1, max_queue_wait_s=1)
    for _ in range(3):
        with pytest.raises(RuntimeError):
            async with lim.slot():
                assert lim.in_flight == 1
                raise RuntimeError("upstream exploded")
    assert lim.in_flight == 0
    async with lim.slot():  # and the slot is really usable again
        assert lim.in_flight == 1


async def test_slot_returned_on_cancel_while_held(make_limiter: MakeLimiter) -> None:
    lim = make_limiter(slots=2, max_queue_wait_s=5)
    entered = asyncio.Event()

    async def holder() -> None:
        async with lim.slot():
            entered.set()
            await asyncio.sleep(3600)

    t = asyncio.create_task(holder())
    await entered.wait()
    assert lim.in_flight == 1
    t.cancel()
    with pytest.raises(asyncio.CancelledError):
        await t
    assert lim.in_flight == 0


async def test_cancel_while_queued_leaves_the_queue_and_keeps_fifo(make_limiter: MakeLimiter) -> None:
    lim = make_limiter(slots=1, max_queue_wait_s=30)
    got: list[str] = []
    release = asyncio.Event()

    async def holder() -> None:
        async with lim.slot():
            await release.wait()

    async def waiter(name: str) -> None:
        async with lim.slot():
            got.append(name)

    h = asyncio.create_task(holder())
    await asyncio.sleep(0)
    a = asyncio.create_task(waiter("a"))
    await asyncio.sleep(0)
    b = asyncio.create_task(waiter("b"))
    await asyncio.sleep(0)
    c = asyncio.create_task(waiter("c"))
    await asyncio.sleep(0)
    assert lim.queued == 3
    b.cancel()  # a client disconnects while queued
    with pytest.raises(asyncio.CancelledError):
        await b
    assert lim.queued == 2 and lim.in_flight == 1
    release.set()
    await asyncio.gather(h, a, c)
    assert got == ["a", "c"]
    assert lim.in_flight == 0 and lim.queued == 0


async def test_cancel_right_after_slot_handed_over_gives_it_back(make_limiter: MakeLimiter) -> None:
    lim = make_limiter(slots=1, max_queue_wait_s=30)

    async def waiter() -> None:
        async with lim.slot():
            raise AssertionError("cancelled before it could run")

    held = lim.slot()
    await held.__aenter__()
    w = asyncio.create_task(waiter())
    await asyncio.sleep(0)
    assert lim.queued == 1
    await held.__aexit__(None, None, None)  # hands the slot to the waiter (no loop turn) ...
    assert lim.in_flight == 1 and lim.queued == 0
    w.cancel()  # ... which is cancelled before it resumes
    with pytest.raises(asyncio.CancelledError):
        await w
    assert lim.in_flight == 0


async def test_raising_the_limit_wakes_waiters_at_once(make_limiter: MakeLimiter, clock: Callable[[], float]) -> None:
    lim = make_limiter(clock=clock, slots=1, rps=10, increase=10, increase_every_s=60, max_queue_wait_s=30)
    release = asyncio.Event()
    entered: list[int] = []

    async def holder() -> None:
        async with lim.slot():
            await release.wait()

    async def waiter(i: int) -> None:
        async with lim.slot():
            entered.append(i)
            await release.wait()

    h = asyncio.create_task(holder())
    await asyncio.sleep(0)
    ws = [asyncio.create_task(waiter(i)) for i in range(5)]
    await asyncio.sleep(0)
    assert lim.queued == 5 and entered == []
    clock.advance(61)  # type: ignore[attr-defined]
    lim.observe(200, None)  # calm for 60 s: +10 slots, applied in this very call
    assert lim.slots_limit == 11
    assert lim.in_flight == 6 and lim.queued == 0  # handed over synchronously, no polling
    await asyncio.sleep(0)
    assert entered == [0, 1, 2, 3, 4]
    release.set()
    await asyncio.gather(h, *ws)


async def test_lowered_limit_below_in_flight_grants_nothing_until_under_it(make_limiter: MakeLimiter) -> None:
    lim = make_limiter(slots=10, min_slots=1, max_queue_wait_s=30)
    release = [asyncio.Event() for _ in range(10)]

    async def holder(i: int) -> None:
        async with lim.slot():
            await release[i].wait()

    hs = [asyncio.create_task(holder(i)) for i in range(10)]
    await asyncio.sleep(0)
    assert lim.in_flight == 10
    lim.observe(429, None)  # 10 -> 7 slots
    assert lim.slots_limit == 7
    got = asyncio.Event()

    async def newcomer() -> None:
        async with lim.slot():
            got.set()

    n = asyncio.create_task(newcomer())
    for i in range(3):  # in flight 10 -> 7: still not under the new limit
        release[i].set()
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert not got.is_set()
        assert lim.in_flight <= 10 - i
    release[3].set()  # 6 in flight: now there is room
    await asyncio.wait_for(got.wait(), 1)
    assert lim.in_flight <= lim.slots_limit
    for e in release:
        e.set()
    await asyncio.gather(n, *hs)
    assert lim.in_flight == 0


async def test_disabled_limiter_passes_through_but_counts(make_limiter: MakeLimiter) -> None:
    lim = make_limiter(slots=1, rps=1, enabled=False, max_queue_wait_s=0)
    inside = 0
    peak = 0

    async def request() -> None:
        nonlocal inside, peak
        async with lim.slot():
            await lim.pace()
            inside += 1
            peak = max(peak, inside, lim.in_flight)
            await asyncio.sleep(0)
            inside -= 1

    await asyncio.wait_for(asyncio.gather(*(request() for _ in range(100))), 5)
    assert peak == 100  # neither slots=1 nor rps=1 held anyone back
    lim.observe(429, None)
    snap = lim.snapshot()
    assert snap["rate_limited_total"] == 1 and snap["in_flight"] == 0 and snap["enabled"] is False


async def test_snapshot_has_the_status_fields(make_limiter: MakeLimiter) -> None:
    lim = make_limiter(slots=3, rps=7)
    async with lim.slot():
        snap = lim.snapshot()
    for key in ("rps_limit", "slots_limit", "in_flight", "queued", "rate_limited_total", "throttled_total", "advertised", "breaker"):
        assert key in snap
    assert snap["rps_limit"] == 7.0 and snap["slots_limit"] == 3 and snap["in_flight"] == 1
    assert snap["breaker"] == "closed"
