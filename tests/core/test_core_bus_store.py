"""The event bus and the batching store, with real threads, a real loop and a real SQLite file."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from agentdeck.bus import Alert, Bus, LimitChanged, Policy, RequestCompleted, event_from_dict
from agentdeck.store import Store, connect
from deck_support import ADMIN_TOKEN, GATEWAY_KEY


def _req(i: int, cost: float = 0.01) -> RequestCompleted:
    return RequestCompleted(id=f"r{i}", key="dev", session=None, protocol="openai", endpoint="/v1/chat/completions",
                            model_requested="auto", model="gpt-4o", provider="openai", tier="balanced", rule="feature",
                            status=200, stream=False, input_tokens=10, output_tokens=5, cost_usd=cost)


def test_lossless_subscriber_counts_overflow_and_coalescing_keeps_newest() -> None:
    bus = Bus()
    lossless = bus.subscribe("store", maxlen=10, policy=Policy.LOSSLESS)
    ui = bus.subscribe("ui", maxlen=10, policy=Policy.COALESCE)
    only_alerts = bus.subscribe("alerts", maxlen=100, types={"alert"})
    for i in range(25):
        bus.publish(_req(i))
    bus.publish(Alert(severity="P0", kind="x", message="m"))
    assert [e.id for e in lossless.drain()] == [f"r{i}" for i in range(10)]  # type: ignore[attr-defined]
    assert lossless.dropped == 16
    got = ui.drain()
    assert got[-1].type == "alert" and [e.id for e in got[:-1]] == [f"r{i}" for i in range(16, 25)]  # type: ignore[attr-defined]
    assert ui.dropped == 16 and bus.dropped == 32
    assert [e.type for e in only_alerts.drain()] == ["alert"]


def test_publish_never_blocks_with_a_stuck_subscriber_on_another_thread() -> None:
    bus = Bus()
    bus.subscribe("stuck", maxlen=100)  # never drained
    t0 = time.perf_counter()
    for i in range(50_000):
        bus.publish(_req(i))
    per_event_us = (time.perf_counter() - t0) / 50_000 * 1e6
    assert per_event_us < 50  # a deque append, not a wait


def test_async_subscriber_wakes_from_another_thread() -> None:
    bus = Bus()

    async def main() -> list[Any]:
        sub = bus.subscribe("sse", maxlen=100)
        first = asyncio.ensure_future(sub.get_batch(timeout=5))
        await asyncio.sleep(0.05)
        threading.Thread(target=lambda: bus.publish(_req(1))).start()
        return await first

    got = asyncio.run(main())
    assert [e.id for e in got] == ["r1"]  # type: ignore[attr-defined]


def test_events_round_trip_through_json() -> None:
    e = LimitChanged(provider="anthropic", rps_limit=35.0, slots_limit=35, reason="congestion")
    back = event_from_dict(json.loads(json.dumps(e.to_dict())))
    assert back == e
    assert event_from_dict({"type": "from-the-future"}) is None


def test_to_json_is_to_dict_and_round_trips_for_every_event() -> None:
    """The SSE stream uses ``to_json`` (no dict per event); it must say exactly what ``to_dict`` says."""
    samples = [_req(7), LimitChanged(provider="openai", rps_limit=12.5, slots_limit=4, reason="recovery")]
    for e in samples:
        assert json.loads(e.to_json()) == json.loads(json.dumps(e.to_dict()))
        assert event_from_dict(json.loads(e.to_json())) == e
    newer = {**json.loads(samples[1].to_json()), "field_from_a_newer_gateway": 1}
    assert event_from_dict(newer) == samples[1]


def test_store_batches_and_flushes_on_close(tmp_path: Path) -> None:
    bus = Bus()
    path = tmp_path / "agentdeck.db"

    async def main() -> tuple[int, int]:
        store = await Store(path, bus, flush_interval_s=0.2).open()
        for i in range(500):
            bus.publish(_req(i))
        bus.publish(Alert(severity="P1", kind="k", message="m"))
        before = sqlite3.connect(path).execute("SELECT COUNT(*) FROM requests").fetchone()[0]
        await asyncio.sleep(0.35)
        mid = sqlite3.connect(path).execute("SELECT COUNT(*) FROM requests").fetchone()[0]
        for i in range(500, 600):
            bus.publish(_req(i))
        await store.close()
        assert before == 0  # nothing written on the publishing path
        return mid, store.flushes

    mid, flushes = asyncio.run(main())
    assert mid == 500 and flushes >= 2
    db = connect(path)
    assert db.execute("SELECT COUNT(*) FROM requests").fetchone()[0] == 600
    assert db.execute("SELECT COUNT(*) FROM alerts").fetchone()[0] == 1
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    names = [r[0] for r in db.execute("SELECT name FROM schema_migrations ORDER BY name")]
    assert names[0] == "001_core.sql" and names == sorted(names)


def test_admin_events_streams_the_bus_as_sse(gateway: Any, openai_client: Any) -> None:
    seen: list[dict[str, Any]] = []

    def listen() -> None:
        with httpx.stream("GET", gateway.url + "/admin/events", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
                          timeout=10) as r:
            for line in r.iter_lines():
                if line.startswith("data: "):
                    seen.append(json.loads(line[6:]))
                    if any(e["type"] == "request" for e in seen):
                        return

    t = threading.Thread(target=listen)
    t.start()
    time.sleep(0.3)
    openai_client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}])
    t.join(10)
    req = next(e for e in seen if e["type"] == "request")
    assert req["model"] == "gpt-4o-mini" and req["key"] == "dev" and req["cost_usd"] > 0
    assert GATEWAY_KEY not in json.dumps(seen)
    assert httpx.get(gateway.url + "/admin/events").status_code == 401
