"""The kill switch: immediate refusal, per-key scope, watch events, and a stop that survives a restart."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from agentdeck.bus import Bus, StopChanged
from agentdeck.budget import KillSwitch
from agentdeck.store import Store, db_path


async def test_stop_and_resume_global_and_per_key(tmp_path: Path) -> None:
    bus = Bus()
    sub = bus.subscribe("t")
    store = Store(db_path(tmp_path), bus)
    await store.open()
    try:
        ks = KillSwitch(bus, store)
        await ks.load()
        assert ks.check("dev") is None
        await ks.stop("runaway loop in ci", key="ci", actor="cli")
        assert ks.check("dev") is None
        info = ks.check("ci")
        assert info is not None and info.reason == "runaway loop in ci" and info.key == "ci"
        assert "agentdeck resume --key ci" in info.message
        assert ks.check("dev", session="ci") is not None  # a stop can name a session
        assert ks.state()["stopped"] is False and ks.state()["stopped_keys"] == {"ci": "runaway loop in ci"}

        await ks.stop("3am incident", actor="console")
        g = ks.check("dev")
        assert g is not None and g.key is None and g.actor == "console"
        st = ks.state()
        assert st["stopped"] is True and st["stop_reason"] == "3am incident" and st["actor"] == "console"

        assert await ks.resume(actor="api") is True
        assert ks.check("dev") is None and ks.check("ci") is not None  # the key stop stays
        assert await ks.resume(actor="api") is False  # nothing to lift: nothing recorded
        assert await ks.resume(key="ci", actor="cli") is True
        assert ks.check("ci") is None

        evs = [e for e in sub.drain() if isinstance(e, StopChanged)]
        assert [(e.stopped, e.key, e.actor) for e in evs] == [
            (True, "ci", "cli"), (True, None, "console"), (False, None, "api"), (False, "ci", "cli")]
        hist = await ks.history()
        assert [(h["stopped"], h["key"], h["actor"]) for h in hist] == [
            (0, "ci", "cli"), (0, None, "api"), (1, None, "console"), (1, "ci", "cli")]
        assert hist[2]["reason"] == "3am incident"
    finally:
        await store.close()


async def test_check_is_refused_before_the_store_write_finishes(tmp_path: Path) -> None:
    bus = Bus()
    store = Store(db_path(tmp_path), bus)
    await store.open()
    try:
        ks = KillSwitch(bus, store)
        task = asyncio.create_task(ks.stop("now", actor="api"))
        await asyncio.sleep(0)  # the stop has run up to its first await (the disk write)
        assert ks.check("anyone") is not None
        await task
    finally:
        await store.close()


async def test_check_is_cheap() -> None:
    ks = KillSwitch(Bus(), None)
    for i in range(1000):
        await ks.stop("x", key=f"k{i}")
    t0 = time.perf_counter()
    for _ in range(100_000):
        ks.check("dev", "sess")
    per_call = (time.perf_counter() - t0) / 100_000
    assert per_call < 5e-6  # a couple of dict reads, however many keys are stopped


async def test_watch_fires_for_covering_stops_only() -> None:
    ks = KillSwitch(Bus(), None)
    a1 = ks.watch("a", None)
    a2 = ks.watch("a", None)
    assert a1 is a2  # shared by every stream of the scope
    b = ks.watch("b", "sess-1")
    await ks.stop("a misbehaves", key="a")
    assert a1.is_set() and not b.is_set()
    a3 = ks.watch("a", None)
    assert a3.is_set()  # already stopped: set at once
    await ks.resume(key="a")
    a4 = ks.watch("a", None)
    assert not a4.is_set() and a4 is not a1  # replaced after firing
    await ks.stop("session loops", key="sess-1")
    assert b.is_set()
    c = ks.watch("c", None)
    waiter = asyncio.create_task(c.wait())
    t0 = time.perf_counter()
    await ks.stop("all")
    await asyncio.wait_for(waiter, 1.0)
    assert time.perf_counter() - t0 < 0.1
    assert a4.is_set()


async def test_stop_survives_a_restart(tmp_path: Path) -> None:
    bus = Bus()
    store = Store(db_path(tmp_path), bus)
    await store.open()
    ks = KillSwitch(bus, store)
    await ks.stop("budget incident", actor="cli")
    await ks.stop("noisy", key="batch", actor="api")
    await ks.stop("flaky", key="tmp", actor="api")
    await ks.resume(key="tmp", actor="console")
    await store.close()

    bus2 = Bus()
    store2 = Store(db_path(tmp_path), bus2)
    await store2.open()
    try:
        ks2 = KillSwitch(bus2, store2)
        await ks2.load()
        g = ks2.check("dev")
        assert g is not None and g.reason == "budget incident" and g.actor == "cli"
        st = ks2.state()
        assert st["stopped"] is True and st["stopped_keys"] == {"batch": "noisy"}
        await ks2.resume(actor="cli")
        assert ks2.check("dev") is None and ks2.check("batch") is not None
    finally:
        await store2.close()
