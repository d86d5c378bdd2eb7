"""Circuit breaker: closed -> open -> half-open (one probe) -> closed or open again."""

from __future__ import annotations

from typing import TYPE_CHECKING

from agentdeck.bus import Alert, Bus
from agentdeck.config import BreakerConfig, LimitsConfig
from agentdeck.limits import CircuitBreaker, ProviderLimiter

if TYPE_CHECKING:
    from limits_support import FakeClock


def test_opens_after_threshold_consecutive_failures(clock: FakeClock) -> None:
    b = CircuitBreaker(BreakerConfig(failure_threshold=3, open_for_s=30), clock=clock)
    b.record_failure()
    b.record_failure()
    b.record_success()  # a success in between resets the count
    b.record_failure()
    b.record_failure()
    assert b.state == "closed" and b.allow()
    b.record_failure()
    assert b.state == "open"
    assert not b.allow()


def test_half_open_lets_exactly_one_probe_then_closes_on_success(clock: FakeClock) -> None:
    b = CircuitBreaker(BreakerConfig(failure_threshold=1, open_for_s=30), clock=clock)
    b.record_failure()
    clock.advance(29.9)
    assert not b.allow()
    clock.advance(0.2)
    assert b.state == "half_open"
    assert b.allow()  # the probe
    assert not b.allow() and not b.allow()  # everyone else still falls back
    b.record_success()
    assert b.state == "closed"
    assert all(b.allow() for _ in range(5))


def test_failed_probe_reopens_for_another_period(clock: FakeClock) -> None:
    b = CircuitBreaker(BreakerConfig(failure_threshold=2, open_for_s=10), clock=clock)
    b.record_failure()
    b.record_failure()
    clock.advance(10)
    assert b.allow()
    b.record_failure()
    assert b.state == "open"
    clock.advance(9)
    assert not b.allow()
    clock.advance(1)
    assert b.allow()
    assert b.opened_total == 2


def test_a_probe_that_never_reports_is_replaced(clock: FakeClock) -> None:
    b = CircuitBreaker(BreakerConfig(failure_threshold=1, open_for_s=10), clock=clock)
    b.record_failure()
    clock.advance(10)
    assert b.allow()  # probe sent, its request was cancelled and never recorded
    clock.advance(5)
    assert not b.allow()
    clock.advance(5)
    assert b.allow()


def test_limiter_owns_a_breaker_and_alerts_on_open_and_close(clock: FakeClock) -> None:
    bus = Bus()
    sub = bus.subscribe("t")
    lim = ProviderLimiter("anthropic", LimitsConfig(), bus, clock=clock, breaker=BreakerConfig(failure_threshold=2, open_for_s=5))
    lim.breaker.record_failure()
    lim.breaker.record_failure()
    assert lim.snapshot()["breaker"] == "open"
    clock.advance(5)
    assert lim.snapshot()["breaker"] == "half_open"
    assert lim.breaker.allow()
    lim.breaker.record_success()
    alerts = [e for e in sub.drain() if isinstance(e, Alert)]
    assert [a.kind for a in alerts] == ["breaker_open", "breaker_closed"]
    assert "anthropic" in alerts[0].message
