"""Anomaly detection: a steady baseline then a 10x burst fires a P0; a quiet start does not."""

from __future__ import annotations

from agentdeck.bus import Alert, Bus
from agentdeck.budget.anomaly import AnomalyDetector
from agentdeck.config import AnomalyConfig

from budget_support import FakeClock


def drive(det: AnomalyDetector, clock: FakeClock, key: str, rps: float, seconds: float, cost: float = 0.001) -> None:
    """Send ``rps`` requests per second for ``seconds``, evenly spaced."""
    n = int(rps * seconds)
    step = 1.0 / rps
    for _ in range(n):
        det.observe(key, cost)
        clock.advance(step)


def alerts_of(bus_sub) -> list[Alert]:  # type: ignore[no-untyped-def]
    return [e for e in bus_sub.drain() if isinstance(e, Alert)]


def test_steady_baseline_then_10x_burst_fires_p0_once() -> None:
    bus, clock = Bus(), FakeClock()
    sub = bus.subscribe("t")
    det = AnomalyDetector(AnomalyConfig(), bus, clock=clock)
    drive(det, clock, "other", 0.5, 120, cost=0.0001)
    drive(det, clock, "agent", 1.0, 400, cost=0.0001)
    assert alerts_of(sub) == []
    assert abs(det.rates("agent")["baseline_rps"] - 1.0) < 0.1

    drive(det, clock, "agent", 12.0, 15, cost=0.0001)  # a loop: 12x the baseline
    got = alerts_of(sub)
    rps = [a for a in got if a.kind == "rps-anomaly"]
    assert [(a.severity, a.key) for a in rps if a.key == "agent"] == [("P0", "agent")]
    assert any(a.key is None for a in rps)  # the gateway as a whole saw it too
    mine = next(a for a in rps if a.key == "agent")
    assert mine.message.startswith("key 'agent': ") and "baseline of 1.0" in mine.message
    assert det.anomalous_keys() == ["agent"]
    # Still looping: the same episode does not alert again.
    drive(det, clock, "agent", 12.0, 20, cost=0.0001)
    assert [a for a in alerts_of(sub) if a.kind == "rps-anomaly" and a.key == "agent"] == []


def test_quiet_start_does_not_alert_on_first_burst() -> None:
    bus, clock = Bus(), FakeClock()
    sub = bus.subscribe("t")
    det = AnomalyDetector(AnomalyConfig(), bus, clock=clock)
    drive(det, clock, "new", 20.0, 5)  # a fresh key starts with a burst
    drive(det, clock, "new", 0.1, 30)
    assert alerts_of(sub) == []
    # Low traffic never trips the floor: 1 request per second is 5x the 0.2 req/s floor, not 10x.
    drive(det, clock, "new", 1.0, 60)
    assert [a for a in alerts_of(sub) if a.kind == "rps-anomaly"] == []


def test_cost_spike_fires_p1_and_throttle_follows_the_anomaly() -> None:
    bus, clock = Bus(), FakeClock()
    sub = bus.subscribe("t")
    det = AnomalyDetector(AnomalyConfig(throttle_key=True, throttle_rps=1.0), bus, clock=clock)
    drive(det, clock, "dev", 1.0, 400, cost=0.002)  # $7.20/hour
    assert alerts_of(sub) == [] and not det.throttled("dev")
    drive(det, clock, "dev", 1.0, 60, cost=0.006)  # same pace, opus instead of haiku: 3x the cost rate
    cost = [a for a in alerts_of(sub) if a.kind == "cost-anomaly"]
    assert ("P1", "dev") in [(a.severity, a.key) for a in cost]
    assert not det.throttled("dev")  # throttling is for request floods

    drive(det, clock, "dev", 20.0, 12, cost=0.002)
    assert det.throttled("dev")
    clock.advance(30)  # the flood stops: the key is released
    assert not det.throttled("dev")


def test_disabled_detector_is_silent() -> None:
    bus, clock = Bus(), FakeClock()
    sub = bus.subscribe("t")
    det = AnomalyDetector(AnomalyConfig(enabled=False), bus, clock=clock)
    drive(det, clock, "a", 1.0, 100)
    drive(det, clock, "a", 50.0, 10)
    assert alerts_of(sub) == []
