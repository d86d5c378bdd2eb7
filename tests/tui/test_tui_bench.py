"""The console benchmark's plumbing (not its numbers: a benchmark is never a timed test).

``agentdeck bench --scenario console`` is how the README's console figures are reproduced, so
both of its modes must keep working end to end: events reach the console through the real
path (the gateway's bus in-process, ``/admin/events`` from a child process), keys are pressed
and rendered, and the one-caller load reports the gateway's added latency in each phase.
"""

from __future__ import annotations

import sys
from typing import Any

import pytest

from agentdeck.tui.app import ConsoleApp
from agentdeck.bench.console import bench_console, format_comparison
from agentdeck.tui.engine import GIL_SWITCH_S, InProcessEngine


@pytest.mark.parametrize("gateway_process", [False, True], ids=["thread", "child-process"])
def test_console_bench_runs_end_to_end(gateway_process: bool) -> None:
    before = sys.getswitchinterval()
    r = bench_console(300.0, 3.0, one_caller=True, gateway_process=gateway_process, calls_s=1.5)
    assert r["gateway"] == ("child process" if gateway_process else "thread")
    assert r["events_per_s_sent"] > 100, "the feeder did not run"
    assert r["events_per_s_seen"] > 100, "the feeder's events did not reach the console"
    assert r["events_dropped"] == 0
    assert r["key_latency_ms"]["n"] >= 2
    for phase in ("calls_without_console", "calls_with_console", "calls_with_console_keys"):
        calls = r[phase]
        assert calls["errors"] == 0 and calls["calls_per_s"] > 0, phase
        assert calls["direct_p50_ms"] > 0 and calls["p50_ms"] > 0, phase
        assert calls["added_p50_ms"] == pytest.approx(calls["p50_ms"] - calls["direct_p50_ms"], abs=0.002)
    assert sys.getswitchinterval() == before, "the console must give the interpreter its switch interval back"
    text = format_comparison({"thread": r, "process": r})
    assert "added latency, one caller" in text and "gateway in a child process" in text


async def test_embedded_console_shortens_the_switch_interval_while_it_runs(make_gateway: Any) -> None:
    """Embedded, the gateway thread waits at most ~1 ms for the interpreter lock while a frame is drawn."""
    gw = make_gateway()
    before = sys.getswitchinterval()
    app = ConsoleApp(InProcessEngine(gw, owns_gateway=False), db_path=gw.cfg.gateway.data_path / "agentdeck.db")
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause(0.3)
        assert sys.getswitchinterval() == pytest.approx(min(before, GIL_SWITCH_S))
    assert sys.getswitchinterval() == pytest.approx(before)
