"""The ledger: reservations never overshoot, settle/release are idempotent, windows survive a restart."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

from agentdeck.bus import Bus, RequestCompleted
from agentdeck.budget import BudgetExceeded, Ledger
from agentdeck.store import Store, db_path

from budget_support import FakeClock, alerts, make_config


async def test_300_concurrent_reservations_never_pass_the_budget(tmp_path: Path, bus: Bus) -> None:
    """Callers reserve, await an 'upstream', then settle, fail, time out or get cancelled (client gone)."""
    cfg = make_config(tmp_path, budget={"hourly_usd": 0.02, "daily_usd": 1.0})
    ledger = Ledger(cfg, bus)
    peak = 0.0
    refused = 0
    admitted = 0
    rng = random.Random(7)

    def observe() -> None:
        nonlocal peak
        peak = max(peak, ledger.spent("hourly") + ledger.reserved_usd)

    async def caller(i: int) -> None:
        nonlocal refused, admitted
        await asyncio.sleep(rng.random() * 0.01)
        try:
            r = ledger.reserve(f"k{i % 5}", 0.0004 + rng.random() * 0.0006)
        except BudgetExceeded as e:
            refused += 1
            assert e.budget == "hourly"
            return
        admitted += 1
        observe()
        try:
            outcome = i % 4
            if outcome == 3:
                await asyncio.wait_for(asyncio.sleep(1), 0.002)  # upstream timeout
            await asyncio.sleep(rng.random() * 0.005)  # the upstream call (may be cancelled)
            if outcome == 1:
                raise ConnectionError("upstream 502")
            ledger.settle(r, r.amount_usd * (1.0 if outcome == 2 else rng.random()))
        except (ConnectionError, asyncio.TimeoutError):
            ledger.release(r)
        finally:
            ledger.release(r)  # every exit path (cancel included) ends here; a no-op after settle
            observe()

    tasks = [asyncio.create_task(caller(i)) for i in range(300)]
    await asyncio.sleep(0.006)
    for t in tasks[::7]:
        t.cancel()  # client disconnects
    await asyncio.gather(*tasks, return_exceptions=True)
    assert peak <= 0.02 + 1e-12
    assert ledger.spent("hourly") <= 0.02 + 1e-12
    assert refused > 0 and admitted > 0
    assert ledger.open_reservations == 0
    assert ledger.reserved_usd == 0.0


def test_settle_and_release_are_idempotent(tmp_path: Path, bus: Bus, clock: FakeClock) -> None:
    ledger = Ledger(make_config(tmp_path, budget={"hourly_usd": 1.0, "daily_usd": 5.0}), bus, clock=clock)
    r = ledger.reserve("dev", 0.5)
    assert ledger.reserved_usd == pytest.approx(0.5)
    ledger.settle(r, 0.2)
    ledger.settle(r, 0.2)
    ledger.release(r)
    assert ledger.spent("hourly") == pytest.approx(0.2)
    assert ledger.reserved_usd == 0.0
    r2 = ledger.reserve("dev", 0.3)
    ledger.release(r2)
    ledger.release(r2)
    ledger.settle(r2, 0.3)
    assert ledger.spent("daily") == pytest.approx(0.2)
    assert ledger.open_reservations == 0


def test_refusal_names_budget_amounts_and_rolling_reset(tmp_path: Path, bus: Bus, clock: FakeClock) -> None:
    ledger = Ledger(make_config(tmp_path, budget={"hourly_usd": 1.0, "daily_usd": 50.0}), bus, clock=clock)
    first = clock.t
    ledger.settle(ledger.reserve("dev", 0.6), 0.6)
    clock.advance(600)
    ledger.settle(ledger.reserve("dev", 0.3), 0.3)
    with pytest.raises(BudgetExceeded) as ei:
        ledger.reserve("dev", 0.2)
    e = ei.value
    assert e.budget == "hourly" and e.limit_usd == 1.0
    assert "hourly budget $1.00 reached ($0.90 spent" in e.message and "$0.20" in e.message
    # The 0.6 spent first must age out for 0.2 more to fit: that happens one hour after its minute bucket.
    assert e.resets_at == (int(first // 60) + 60) * 60
    assert "in 50m" in e.message or "in 49m" in e.message
    clock.t = e.resets_at
    ledger.reserve("dev", 0.2)  # fits now: the window rolled


def test_hour_window_rolls_and_day_keeps(tmp_path: Path, bus: Bus, clock: FakeClock) -> None:
    ledger = Ledger(make_config(tmp_path, budget={"hourly_usd": 10.0, "daily_usd": 50.0}), bus, clock=clock)
    ledger.settle(ledger.reserve("dev", 2.0), 1.5)
    clock.advance(3700)
    assert ledger.spent("hourly") == 0.0
    assert ledger.spent("daily") == pytest.approx(1.5)
    clock.advance(86400)
    assert ledger.spent("daily") == 0.0


def test_key_and_session_budgets(tmp_path: Path, bus: Bus, clock: FakeClock) -> None:
    cfg = make_config(tmp_path, keys=[{"name": "dev", "key": "sk-dev", "daily_budget_usd": 1.0}],
                      budget={"hourly_usd": 100.0, "daily_usd": 100.0})
    ledger = Ledger(cfg, bus, clock=clock)
    ledger.settle(ledger.reserve("dev", 0.9), 0.9)
    with pytest.raises(BudgetExceeded) as ei:
        ledger.reserve("dev", 0.2)
    assert ei.value.budget == "key:dev"
    assert "key 'dev' daily budget $1.00" in ei.value.message
    ledger.reserve("other", 0.2)  # other keys keep working
    ledger.set_key_budget("run-1", 0.05)
    r = ledger.reserve("ci", 0.04, session="run-1")
    with pytest.raises(BudgetExceeded) as ei2:
        ledger.reserve("ci", 0.02, session="run-1")
    assert ei2.value.budget == "session:run-1"
    ledger.settle(r, 0.01)
    ledger.reserve("ci", 0.02, session="run-1")
    snap = ledger.snapshot()
    assert snap["keys"]["dev"] == {"day_usd": pytest.approx(0.9), "budget_usd": 1.0, "reserved_usd": 0.0}
    assert snap["keys"]["run-1"]["budget_usd"] == 0.05
    assert snap["keys"]["run-1"]["day_usd"] == pytest.approx(0.01)
    assert set(snap) >= {"hour_usd", "day_usd", "reserved_usd", "hourly_usd", "daily_usd", "keys"}


def test_thresholds_alert_once_each_and_auto_stop(tmp_path: Path, bus: Bus, clock: FakeClock) -> None:
    sub = bus.subscribe("t")
    exhausted: list[str] = []
    cfg = make_config(tmp_path, budget={"hourly_usd": 1000.0, "daily_usd": 1.0})
    ledger = Ledger(cfg, bus, clock=clock, on_daily_exhausted=exhausted.append)
    for _ in range(4):  # 0.4 spent: nothing yet
        ledger.settle(ledger.reserve("dev", 0.1), 0.1)
    assert alerts(sub) == []
    ledger.settle(ledger.reserve("dev", 0.1), 0.1)  # 50%
    ledger.settle(ledger.reserve("dev", 0.1), 0.1)  # 60%: no repeat
    got = alerts(sub)
    assert [(a.severity, a.kind) for a in got] == [("P2", "budget-daily-50")]
    ledger.settle(ledger.reserve("dev", 0.1), 0.1)
    ledger.settle(ledger.reserve("dev", 0.1), 0.1)  # 80%
    ledger.settle(ledger.reserve("dev", 0.05), 0.05)
    assert [(a.severity, a.kind) for a in alerts(sub)] == [("P1", "budget-daily-80")]
    assert exhausted == []
    ledger.settle(ledger.reserve("dev", 0.1), 0.1)  # 95%: still room for small calls
    with pytest.raises(BudgetExceeded):
        ledger.reserve("dev", 0.1)  # does not fit even with nothing in flight: the budget is reached
    with pytest.raises(BudgetExceeded):
        ledger.reserve("dev", 0.1)
    got = alerts(sub)
    assert [(a.severity, a.kind) for a in got] == [("P0", "budget-daily-100")]
    assert "daily budget reached" in got[0].message
    assert len(exhausted) == 1 and "daily budget $1.00 reached" in exhausted[0]


def test_concurrent_reservations_do_not_declare_the_budget_gone(tmp_path: Path, bus: Bus, clock: FakeClock) -> None:
    sub = bus.subscribe("t")
    exhausted: list[str] = []
    ledger = Ledger(make_config(tmp_path, budget={"hourly_usd": 1000.0, "daily_usd": 1.0}), bus, clock=clock,
                    on_daily_exhausted=exhausted.append)
    held = [ledger.reserve("dev", 0.3) for _ in range(3)]
    with pytest.raises(BudgetExceeded):
        ledger.reserve("dev", 0.3)  # refused because of calls in flight, not because money is gone
    assert exhausted == [] and alerts(sub) == []
    for r in held:
        ledger.settle(r, 0.01)


def test_auto_stop_hook_may_be_async(tmp_path: Path, bus: Bus, clock: FakeClock) -> None:
    calls: list[str] = []

    async def hook(reason: str) -> None:
        calls.append(reason)

    async def main() -> None:
        ledger = Ledger(make_config(tmp_path, budget={"hourly_usd": 1000.0, "daily_usd": 1.0}), bus, clock=clock,
                        on_daily_exhausted=hook)
        ledger.settle(ledger.reserve("dev", 1.0), 1.0)  # settled spend reaches 100%
        await asyncio.sleep(0)
        await asyncio.sleep(0)

    asyncio.run(main())
    assert len(calls) == 1


async def test_windows_rebuilt_from_a_real_store(tmp_path: Path, bus: Bus) -> None:
    cfg = make_config(tmp_path, keys=[{"name": "dev", "key": "sk-dev", "daily_budget_usd": 3.0}],
                      budget={"hourly_usd": 10.0, "daily_usd": 50.0, "alert_thresholds": [0.5, 0.8, 1.0]})
    store = Store(db_path(cfg.gateway.data_dir), bus, flush_interval_s=0.05)
    await store.open()
    import time

    now = time.time()

    def req(i: int, ts: float, key: str, cost: float) -> RequestCompleted:
        return RequestCompleted(id=f"r{i}", key=key, session=None, protocol="openai", endpoint="/v1/chat/completions",
                                model_requested="gpt-4o", model="gpt-4o", provider="openai", tier=None, rule=None,
                                status=200, stream=False, cost_usd=cost, ts=ts)

    bus.publish(req(1, now - 2 * 3600, "dev", 2.0))   # in the day, not the hour
    bus.publish(req(2, now - 600, "dev", 0.5))         # in both
    bus.publish(req(3, now - 60, "ci", 0.25))          # in both
    bus.publish(req(4, now - 25 * 3600, "dev", 9.0))   # too old
    await store.flush()
    await store.close()

    bus2 = Bus()
    sub = bus2.subscribe("t")
    store2 = Store(db_path(cfg.gateway.data_dir), bus2)
    await store2.open()
    try:
        ledger = Ledger(cfg, bus2)
        assert await ledger.load(store2) == 3
        snap = ledger.snapshot()
        assert snap["hour_usd"] == pytest.approx(0.75)
        assert snap["day_usd"] == pytest.approx(2.75)
        assert snap["keys"]["dev"]["day_usd"] == pytest.approx(2.5)
        with pytest.raises(BudgetExceeded) as ei:
            ledger.reserve("dev", 0.6)
        assert ei.value.budget == "key:dev"
        # dev's 80% threshold was crossed before the restart: no second alert for it after one.
        ledger.settle(ledger.reserve("dev", 0.1), 0.1)
        assert [a.kind for a in alerts(sub)] == []
    finally:
        await store2.close()
