"""The command palette (ctrl+p or :): every action of the console, findable by name.

Why system commands and not only keys: in an emergency nobody remembers that resume is
``R``; typing "res" must be enough. Each command calls the same app action the key does,
so the palette and the keys can never disagree.
"""

from __future__ import annotations

import csv
import time
from typing import TYPE_CHECKING, Iterable

from textual.app import SystemCommand

from agentdeck.tui.panes.registry import PANES

if TYPE_CHECKING:
    from agentdeck.tui.app import ConsoleApp


def console_commands(app: "ConsoleApp") -> Iterable[SystemCommand]:
    yield SystemCommand("Emergency stop", "Refuse all agent traffic through the gateway (asks first)",
                        app.action_emergency_stop)
    yield SystemCommand("Resume traffic", "Lift the emergency stop (asks first)", app.action_resume)
    yield SystemCommand("Unpause live table" if app.paused else "Pause live table",
                        "Freeze / unfreeze the routing table (p)", app.action_toggle_pause)
    yield SystemCommand("Filter calls", "Show only calls matching words (/)", app.action_filter)
    for name in sorted(app.agentdeck_themes):
        yield SystemCommand(f"Switch theme: {name}", f"Use the {name} theme from themes/{name}.toml",
                            lambda n=name: app.set_console_theme(n))
    yield SystemCommand("New diagnosis", "Start the five-point diagnosis wizard in the Diagnose pane",
                        lambda: app.diagnose(None))
    yield SystemCommand("Run flaky tests", "Run the project's tests many times in the Flaky pane", app.run_flaky_tests)
    yield SystemCommand("Export calls (CSV)", "Write the calls in the live table to a CSV file",
                        lambda: export_calls(app))
    for pane in PANES:
        yield SystemCommand(f"Go to {pane.title}", f"{pane.summary} ({pane.key})",
                            lambda p=pane.id: app.action_show_pane(p))


EXPORT_FIELDS = ("id", "ts", "key", "session", "model_requested", "model", "provider", "tier", "rule", "status",
                 "input_tokens", "output_tokens", "cost_usd", "baseline_cost_usd", "latency_ms", "error")


def export_calls(app: "ConsoleApp") -> None:
    """The rows the live table shows (filter applied), newest first, as CSV under the data dir."""
    from agentdeck.tui.panes.routing import RoutingPane

    pane = app.query_one(RoutingPane)
    rows = pane.table.rows
    app.export_dir.mkdir(parents=True, exist_ok=True)
    path = app.export_dir / f"calls-{time.strftime('%Y%m%d-%H%M%S')}.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(EXPORT_FIELDS)
        for r in rows:
            w.writerow([getattr(r.ev, k) for k in EXPORT_FIELDS])
    app.notify(f"Exported {len(rows)} calls to {path}", timeout=8, markup=False)
