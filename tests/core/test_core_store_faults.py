"""The store writer under a real full disk (a small tmpfs): it retries, keeps its queue, alerts, recovers.

Issue 16 point 1. The data dir lives on a 2 MB tmpfs; filling it makes SQLite's writes fail
with "database or disk is full" exactly as on a real disk. Skipped where tmpfs cannot be
mounted; tests/gateway/test_gateway_faults.py then covers the same with a write limit.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import AsyncIterator, Iterator

import pytest

from agentdeck.budget.killswitch import KillSwitch
from agentdeck.bus import Alert, Bus, RequestCompleted, Subscription
from agentdeck.store import Store, connect, db_path
from core_store_support import SmallDisk, mount_small_disk


def _call(i: int, body_kb: int = 4) -> RequestCompleted:
    return RequestCompleted(id=f"r{i}", key="dev", session=None, protocol="openai", endpoint="/v1/chat/completions",
                            model_requested="gpt-4o", model="gpt-4o", provider="openai", tier=None, rule=None,
                            status=200, stream=False, cost_usd=0.001, request_body="x" * (body_kb * 1024))


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[SmallDisk]:
    d = mount_small_disk(tmp_path / "fs")
    if d is None:
        pytest.skip("tmpfs cannot be mounted here (tests/gateway/test_gateway_faults.py uses a write limit)")
    try:
        yield d
    finally:
        d.free()
        d.unmount()


@pytest.fixture
async def rig(disk: SmallDisk) -> AsyncIterator[tuple[Bus, Store, Subscription]]:
    bus = Bus()
    seen = bus.subscribe("test", maxlen=100_000)
    store = await Store(db_path(disk.root / "data"), bus, flush_interval_s=0.02, retry_max_s=0.2).open()
    try:
        yield bus, store, seen
    finally:
        await store.close()


def _alerts(seen: Subscription, kind: str) -> list[Alert]:
    return [e for e in seen.drain() if isinstance(e, Alert) and e.kind == kind]


async def _until(pred: "callable[[], bool]", what: str, limit_s: float = 20.0) -> None:  # type: ignore[valid-type]
    end = time.monotonic() + limit_s
    while not pred():
        if time.monotonic() > end:
            raise AssertionError(f"never happened: {what}")
        await asyncio.sleep(0.02)


def _count(path: Path, table: str) -> int:
    conn = connect(path)
    try:
        return int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
    finally:
        conn.close()


async def test_full_disk_then_freed_loses_nothing(disk: SmallDisk, rig: tuple[Bus, Store, Subscription]) -> None:
    bus, store, seen = rig
    for i in range(5):
        bus.publish(_call(i))
    await _until(lambda: store.pending == 0 and store.rows_written >= 5, "first rows written")

    disk.fill()
    for i in range(5, 105):
        bus.publish(_call(i))
    await _until(lambda: store.failures >= 2, "writes failing on the full disk")
    failed = _alerts(seen, "store-write-failed")
    assert len(failed) == 1 and failed[0].severity == "P0" and "full" in failed[0].message
    assert store.pending >= 100 and store.health().failing  # the calls (and the P0 alert itself)

    # A stop while the disk is full: in force, and the answer says it is in memory only.
    ks = KillSwitch(bus, store)
    ack = await ks.engage("disk drill", actor="api")
    assert ks.check("dev") is not None
    assert not ack.durable and ack.note is not None and "in memory only" in ack.note
    assert "full" in ack.note
    # A session made now works in memory and is written later, after the stop (in order).
    assert not await store.record_session("s1", "d" * 64, "dev", 1.0, time.time())
    resumed = await ks.lift(actor="api")
    assert resumed.changed and not resumed.durable

    disk.free()
    await _until(lambda: store.pending == 0, "the backlog written after the disk was freed")
    recovered = _alerts(seen, "store-write-recovered")
    assert len(recovered) == 1 and recovered[0].severity == "P2"
    assert _count(store.path, "requests") == 105
    # The stop and the resume that were in memory only are on disk now, in order: not stopped.
    assert None not in await store.stop_state()
    assert [h["stopped"] for h in await store.stop_history()] == [0, 1]  # newest first
    assert [r["name"] for r in await store.sessions()] == ["s1"]
    assert await store.close() == 0


async def test_a_full_queue_drops_counts_and_alerts(disk: SmallDisk, tmp_path: Path) -> None:
    bus = Bus()
    seen = bus.subscribe("test", maxlen=100_000)
    store = await Store(db_path(disk.root / "data"), bus, flush_interval_s=0.02, retry_max_s=0.1,
                        max_pending=10).open()
    try:
        disk.fill()
        for i in range(40):
            bus.publish(_call(i))
        await _until(lambda: any(isinstance(e, Alert) and e.kind == "store-rows-dropped" for e in list(seen._q)),
                     "a P0 saying rows were dropped")
        dropped = _alerts(seen, "store-rows-dropped")
        assert dropped[0].severity == "P0" and "dropped" in dropped[0].message
        health = store.health()
        # Bounded: 10 queued plus the batch in hand (at most 10 more); the 30 that did not fit are counted.
        assert health.dropped == 30 and health.pending <= 2 * 10
        disk.free()
        await _until(lambda: store.pending == 0, "what was kept written")
        assert _count(store.path, "requests") == 40 - health.dropped
    finally:
        await store.close()


async def test_close_on_a_full_disk_does_not_raise_and_says_what_is_lost(
        disk: SmallDisk, capsys: pytest.CaptureFixture[str]) -> None:
    bus = Bus()
    store = await Store(db_path(disk.root / "data"), bus, flush_interval_s=0.02, retry_max_s=0.1).open()
    disk.fill()
    for i in range(50):
        bus.publish(_call(i))
    left = await store.close()
    assert left >= 50  # the calls and the P0 alert about them
    err = capsys.readouterr().err
    assert f"{left} rows could not be written" in err and "full" in err
    disk.free()
