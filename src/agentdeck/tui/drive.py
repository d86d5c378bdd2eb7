"""Driving a running console from outside, as a terminal would: for the console benchmark.

Why here: `agentdeck.bench.console` measures the console through its real key path, and only
`agentdeck.tui` may import Textual (tests/test_import_hygiene.py), so the two Textual touches
the benchmark needs live in this module.
"""

from __future__ import annotations

from typing import Any

from textual import events
from textual.app import App
from textual.widgets import TabbedContent


def send_key(app: App[Any], key: str) -> None:
    """Put one key press into the app's driver, the way a terminal's input arrives."""
    assert app._driver is not None, "the console is not running"
    app._driver.send_message(events.Key(key, key))


def pane_tabs(app: App[Any]) -> TabbedContent:
    """The console's pane tabs (their `.active` names the pane on screen)."""
    return app.query_one(TabbedContent)
