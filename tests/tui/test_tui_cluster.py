"""The console on a cluster: the top bar counts the processes, the Providers pane lists them.

Deterministic ticks (``tui_scripted``) with the cluster section a gateway in cluster mode
puts in every stats tick; a local gateway's ticks carry none and the console shows nothing new.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

from textual.css.query import NoMatches
from textual.geometry import Region
from textual.widget import Widget
from tui_scripted import T0, ReplayEngine, make_tick

from agentdeck.tui.app import ConsoleApp
from agentdeck.tui.widgets.processes import ClusterProcesses
from agentdeck.tui.widgets.topbar import TopBar

SIZE = (140, 45)
DB_DIR = Path(tempfile.mkdtemp(prefix="agentdeck-tui-cluster-"))


def _proc(pid: int, port: int, *, in_flight: int, rps: float, seen_ago: float, stopped: bool = False,
          host: str = "ci-1") -> dict[str, Any]:
    return {"id": f"{host}:{pid}:ab12cd", "host": host, "pid": pid, "address": f"http://127.0.0.1:{port}",
            "started": T0 - 600, "in_flight": in_flight, "rps": rps, "stopped": stopped, "last_seen": T0 + 10 - seen_ago}


def cluster_tick(i: int, procs: list[dict[str, Any]], *, up: bool = True) -> Any:
    t = make_tick(i)
    t.providers["anthropic"]["cluster_in_flight"] = sum(p["in_flight"] for p in procs)
    t.providers["anthropic"]["shared"] = True
    t.cluster = {"backend": "redis", "name": "prod", "redis": "10.0.0.5:6379", "this": procs[0]["id"],
                 "read_at": T0 + 10, "up": up, "error": None if up else "ConnectionError: refused",
                 "processes": procs, "in_flight": sum(p["in_flight"] for p in procs),
                 "rps": round(sum(p["rps"] for p in procs), 1)}
    return t


def _text(w: Widget) -> str:
    return "\n".join(s.text for s in w.render_lines(Region(0, 0, w.size.width, w.size.height)))


async def _until(pilot: Any, read: Any, want: str, timeout: float = 15.0) -> str:
    """Let the console pump until ``read()`` shows ``want`` (a loaded machine may take a few frames); what it shows."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while True:
        text = ""
        try:
            text = read()
        except NoMatches:
            pass
        if want in text or loop.time() > end:
            return text
        await pilot.pause(0.05)


def _app(engine: ReplayEngine) -> ConsoleApp:
    app = ConsoleApp(engine, db_path=DB_DIR / "agentdeck.db", project_dir=Path("/srv/example-project"))
    app.clock = lambda: T0 + 11
    return app


async def test_the_console_shows_every_process_of_the_cluster_and_a_dead_one_leaves() -> None:
    three = [_proc(4101, 8787, in_flight=5, rps=41.0, seen_ago=0.0), _proc(4102, 8788, in_flight=2, rps=17.5, seen_ago=0.6),
             _proc(977, 8787, in_flight=0, rps=0.0, seen_ago=1.2, stopped=True, host="ci-2")]
    eng = ReplayEngine([cluster_tick(i, three) for i in range(3)])
    app = _app(eng)
    async with app.run_test(size=SIZE) as pilot:
        bar = await _until(pilot, lambda: _text(app.query_one(TopBar)), "cluster 3 procs")
        assert "cluster 3 procs  (58.5 req/s, 7 in flight)" in bar
        await pilot.press("2")
        procs = lambda: _text(app.query_one(ClusterProcesses))  # noqa: E731
        table = await _until(pilot, procs, "3 processes")
        assert "cluster 'prod' on 10.0.0.5:6379: 3 processes, 58.5 req/s, 7 in flight" in table
        lines = table.splitlines()
        row = {pid: next(ln for ln in lines if f":{pid} " in ln) for pid in (4101, 4102, 977)}
        assert "● ci-1:4101" in row[4101] and "http://127.0.0.1:8787" in row[4101] and "41.0" in row[4101]
        assert "live" in row[4102] and "17.5" in row[4102] and "0.6s ago" in row[4102]
        assert "STOPPED" in row[977] and "ci-2:977" in row[977]
        assert "10m" in row[4101]  # up since T0 - 600
        stats = await _until(pilot, lambda: _text(app.query_one("ProviderStats")), "cluster")
        assert "7/" in stats and "cluster" in stats  # the shared slots, held across the cluster

        # One process stopped heartbeating: its row is gone from the next tick, and from the screen.
        eng.push([cluster_tick(3, three[:2])])
        table = await _until(pilot, procs, "2 processes")
        assert ":977" not in table and "2 processes" in table
        assert "cluster 2 procs" in await _until(pilot, lambda: _text(app.query_one(TopBar)), "cluster 2 procs")

        # Redis not answering: the bar says so in words, the table keeps the last rows and says why.
        eng.push([cluster_tick(4, three[:2], up=False)])
        bar = await _until(pilot, lambda: _text(app.query_one(TopBar)), "Redis not answering")
        assert "cluster: Redis not answering" in bar
        assert "Redis not answering (ConnectionError: refused)" in await _until(pilot, procs, "ConnectionError")


async def test_a_narrow_terminal_keeps_the_process_count_and_each_row() -> None:
    procs = [_proc(4101, 8787, in_flight=5, rps=41.0, seen_ago=0.0),
             _proc(977, 8787, in_flight=0, rps=0.0, seen_ago=1.2, stopped=True, host="ci-2-long-hostname.internal")]
    app = _app(ReplayEngine([cluster_tick(i, procs) for i in range(3)]))
    async with app.run_test(size=(80, 24)) as pilot:
        assert "cluster 2 procs" in await _until(pilot, lambda: _text(app.query_one(TopBar)), "cluster 2 procs")
        await pilot.press("2")
        table = await _until(pilot, lambda: _text(app.query_one(ClusterProcesses)), "1.2s ago")
        assert "ci-2-long-hostname.internal:977" in table and "STOPPED" in table and "1.2s ago" in table
        assert "address" not in table  # dropped before anything that says how the process is doing


async def test_a_local_gateway_adds_nothing_to_the_console() -> None:
    eng = ReplayEngine([make_tick(i) for i in range(3)])
    app = _app(eng)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        assert "in use" in await _until(pilot, lambda: _text(app.query_one("ProviderStats")), "in use")  # ticks arrived
        assert "cluster" not in _text(app.query_one(TopBar))
        assert not app.query(ClusterProcesses)


def test_providers_pane_in_cluster_mode(snap_compare: Any) -> None:
    """The Providers pane on a cluster of three: the process table on top, the cards' slots the cluster's."""
    from tui_scripted import scripted_events, status_doc

    from agentdeck.bus import StatsTick

    events = scripted_events(120)
    for ev in events:
        if isinstance(ev, StatsTick):
            i = int(ev.ts - T0)
            procs = [_proc(4101, 8787, in_flight=3 + i % 4, rps=6.0, seen_ago=0.0),
                     _proc(4102, 8788, in_flight=2, rps=11.5, seen_ago=0.4),
                     _proc(977, 8787, in_flight=1, rps=3.0, seen_ago=0.8, host="ci-2")]
            for p in procs:
                p["last_seen"] += ev.ts - (T0 + 10)
            tick = cluster_tick(i, procs)
            ev.providers, ev.cluster = tick.providers, {**tick.cluster, "read_at": ev.ts}
    eng = ReplayEngine(events)
    eng.status_doc = status_doc(hour_usd=47.6, day_usd=3.476, hourly_usd=50.0, daily_usd=1000.0)  # as the last tick
    app = _app(eng)
    app.clock = lambda: T0 + 121

    async def run_before(pilot: Any) -> None:
        await pilot.pause(0.3)
        await pilot.press("2")
        await _until(pilot, lambda: _text(app.query_one(ClusterProcesses)), "3 processes")
        await pilot.pause(0.6)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)
