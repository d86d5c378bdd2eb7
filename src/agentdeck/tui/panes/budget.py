"""Budget: hour and day meters, the projection at the current rate, who is spending, alerts, the kill switch.

The meters and the projection come from the gateway's once-a-second stats tick; the top
spenders from the gateway's ledger (``status()``, polled every few seconds while this pane
is on screen); the feed from Alert / StopChanged / BudgetDowngrade events as they arrive.
"""

from __future__ import annotations

import time
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, DataTable, Label, Static

from agentdeck.bus import Alert, BudgetDowngrade, Event, StatsTick, StopChanged
from agentdeck.gateway.admin import GatewayStatus
from agentdeck.tui.keys import NavTable
from agentdeck.tui.model import BudgetModel, fmt_clock, fmt_duration, fmt_usd
from agentdeck.tui.panes.base import LivePane
from agentdeck.tui.widgets.meter import AMBER_AT, Meter


def session_limit_text(model: BudgetModel, name: str) -> str:
    """A session's `agentdeck run` limits for its row: calls used of --max-requests, or that --timeout ended it."""
    stopped = model.stopped_keys.get(name)
    reason = stopped.get("reason") if isinstance(stopped, dict) else stopped
    if isinstance(reason, str) and reason.startswith("timeout"):
        return "timeout"
    s = model.sessions.get(name)
    if s is not None and s.max_requests is not None:
        return f"{s.requests}/{s.max_requests}"
    return "-"


class Projection(Static):
    COMPONENT_CLASSES = {"proj--dim", "proj--ok", "proj--warn", "proj--over"}
    DEFAULT_CSS = """
    Projection { height: auto; padding: 0 1; }
    Projection > .proj--dim { color: $foreground-muted; }
    Projection > .proj--ok { color: $success; }
    Projection > .proj--warn { color: $warning; text-style: bold; }
    Projection > .proj--over { color: $error; text-style: bold; }
    """

    def build(self, m: BudgetModel) -> Text:
        s = self.get_component_rich_style
        t = Text()
        tick = m.tick
        rate = m.rate_per_hour()
        if tick is None or rate is None:
            t.append("projection: measuring the spend rate (needs a few seconds of ticks)…", s("proj--dim"))
            return t

        def level(v: float, budget: float) -> str:
            if budget <= 0:
                return "proj--dim"
            return "proj--over" if v >= budget else "proj--warn" if v >= budget * AMBER_AT else "proj--ok"

        if tick.stopped:
            t.append("traffic is stopped: no new spend. ", s("proj--warn"))
            t.append(f"Before the stop: {fmt_usd(rate)}/h over the last {m.window_s / 60:.0f} minutes.", s("proj--dim"))
            return t
        t.append("at the current rate ", s("proj--dim"))
        t.append(f"{fmt_usd(rate)}/h", s(level(rate, tick.hourly_budget_usd)))
        t.append(" → next hour ", s("proj--dim"))
        t.append(fmt_usd(rate), s(level(rate, tick.hourly_budget_usd)))
        if tick.hourly_budget_usd > 0:
            t.append(f" ({rate / tick.hourly_budget_usd:.0%} of hourly)", s("proj--dim"))
        t.append(" · next 24 h ", s("proj--dim"))
        t.append(fmt_usd(rate * 24), s(level(rate * 24, tick.daily_budget_usd)))
        if tick.daily_budget_usd > 0:
            t.append(f" ({rate * 24 / tick.daily_budget_usd:.0%} of daily)", s("proj--dim"))
        left = []
        if rate > 0:
            for name, spent, budget in (("hourly", tick.hour_usd, tick.hourly_budget_usd),
                                        ("daily", tick.day_usd, tick.daily_budget_usd)):
                if budget > 0 and spent < budget:
                    left.append((name, (budget - spent) / rate * 3600))
        if left:
            name, secs = min(left, key=lambda x: x[1])
            if secs < 3600 * (1 if name == "hourly" else 24):
                t.append(f"\n{name} budget runs out in ~{fmt_duration(secs)} at this rate",
                         s("proj--warn" if secs > 600 else "proj--over"))
        if m.downgrade is not None:
            t.append(f"\nbudget-aware routing: {m.downgrade.budget} budget at {m.downgrade.share:.0%}, "
                     f"auto calls go one tier down", s("proj--warn"))
        return t


class AlertFeed(Static):
    COMPONENT_CLASSES = {"feed--P0", "feed--P1", "feed--P2", "feed--STOP", "feed--INFO", "feed--time"}
    DEFAULT_CSS = """
    AlertFeed { height: 1fr; padding: 0 1; background: $surface; overflow-y: auto; }
    AlertFeed > .feed--P0 { color: $error; text-style: bold; }
    AlertFeed > .feed--P1 { color: $warning; }
    AlertFeed > .feed--P2 { color: $foreground; }
    AlertFeed > .feed--STOP { color: $error; text-style: bold reverse; }
    AlertFeed > .feed--INFO { color: $success; }
    AlertFeed > .feed--time { color: $foreground-muted; }
    """

    def build(self, m: BudgetModel, limit: int = 50) -> Text:
        s = self.get_component_rich_style
        t = Text()
        if not m.feed:
            t.append("no alerts. Budget thresholds, anomalies (10x requests/s, 2x cost), stops and budget "
                     "downgrades appear here.", s("feed--time"))
            return t
        for item in list(reversed(m.feed))[:limit]:
            t.append(fmt_clock(item.ts) + " ", s("feed--time"))
            t.append(f"{item.severity:<4} ", s(f"feed--{item.severity}"))
            t.append(item.text + "\n", s(f"feed--{item.severity}") if item.severity in ("P0", "STOP") else "")
        t.rstrip()
        return t


class StopControl(Horizontal):
    """The emergency stop's state and its two buttons (the domain's ``KillSwitch`` is what they drive)."""

    DEFAULT_CSS = """
    StopControl { height: 3; padding: 0 1; margin-bottom: 1; }
    StopControl #ks-state { width: 1fr; height: 3; content-align: left middle; }
    StopControl.-stopped #ks-state { color: $error; text-style: bold; }
    StopControl #ks-stop { display: block; }
    StopControl #ks-resume { display: none; }
    StopControl.-stopped #ks-stop { display: none; }
    StopControl.-stopped #ks-resume { display: block; }
    """

    def compose(self) -> ComposeResult:
        yield Static("", id="ks-state")
        yield Button("■ Stop all traffic  (!)", id="ks-stop", variant="error")
        yield Button("▶ Resume traffic  (R)", id="ks-resume", variant="success")

    def show(self, stopped: bool, reason: str | None, actor: str | None, since: float | None, keys: dict[str, Any]) -> None:
        self.set_class(stopped, "-stopped")
        if stopped:
            who = f" by {actor}" if actor else ""
            when = f" since {fmt_clock(since)}" if since else ""
            text = f"kill switch: STOPPED{who}{when}: {reason or 'emergency stop'}"
        else:
            text = "kill switch: traffic flowing. ! refuses every new call (asks first)."
        if keys:
            text += f"\nstopped keys/sessions: {', '.join(sorted(keys))}"
        self.query_one("#ks-state", Static).update(text, layout=False)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "ks-stop":
            self.app.run_action("emergency_stop")
        elif event.button.id == "ks-resume":
            self.app.run_action("resume")


class BudgetPane(Vertical, LivePane):
    EVENTS = (StatsTick, Alert, StopChanged, BudgetDowngrade)
    DEFAULT_CSS = """
    BudgetPane { height: 1fr; }
    BudgetPane #meters { height: auto; padding: 1 1 0 1; }
    BudgetPane .section { color: $foreground-muted; text-style: bold; padding: 0 1; height: 1; }
    BudgetPane #lower { height: 1fr; }
    BudgetPane #spenders-box { width: 2fr; min-width: 30; }
    BudgetPane #feed-box { width: 3fr; }
    BudgetPane DataTable { height: 1fr; background: $surface; }
    """
    STATUS_EVERY_S = 3.0

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.model = BudgetModel()
        self._shown = -1
        self._keys_shown: tuple[list[tuple[str, float]], dict[str, str]] | None = None
        self._last_poll = 0.0
        self._proj_lines = -1

    def compose(self) -> ComposeResult:
        with Vertical(id="meters"):
            yield Meter("hour", id="meter-hour")
            yield Meter("day", id="meter-day")
        yield Projection("", id="projection")
        yield StopControl(id="killswitch")
        with Horizontal(id="lower"):
            with Vertical(id="spenders-box"):
                yield Label("top keys and sessions (today)", classes="section")
                yield NavTable(id="spenders", cursor_type="row", zebra_stripes=False)
            with Vertical(id="feed-box"):
                yield Label("alerts", classes="section")
                yield AlertFeed("", id="feed")

    def on_mount(self) -> None:
        t = self.query_one("#spenders", DataTable)
        t.add_column("key / session", key="who", width=16)
        t.add_column("today", key="spent", width=9)
        t.add_column("budget", key="budget", width=9)
        t.add_column("share", key="share", width=6)
        t.add_column("limit", key="limit", width=7)

    def ingest(self, events: list[Event]) -> None:
        for ev in events:
            if isinstance(ev, StatsTick):
                self.model.on_tick(ev)
            else:
                self.model.on_event(ev)

    def set_status(self, st: GatewayStatus) -> None:
        """Spend per key from the ledger (``ConsoleEngine.status()``)."""
        self.model.seed_status(st)

    def wants_status(self, now: float | None = None) -> bool:
        now = time.time() if now is None else now
        if now - self._last_poll >= self.STATUS_EVERY_S:
            self._last_poll = now
            return True
        return False

    def flush(self) -> None:
        m = self.model
        if m.version == self._shown:
            return
        self._shown = m.version
        if m.tick is not None:
            self.query_one("#meter-hour", Meter).set_value(m.tick.hour_usd, m.tick.hourly_budget_usd)
            self.query_one("#meter-day", Meter).set_value(m.tick.day_usd, m.tick.daily_budget_usd)
        proj = self.query_one(Projection)
        text = proj.build(m)
        lines = text.plain.count("\n")
        proj.update(text, layout=lines != self._proj_lines)  # a layout pass only when its height changes
        self._proj_lines = lines
        feed = self.query_one(AlertFeed)
        feed.update(feed.build(m), layout=False)
        stopped = m.tick.stopped if m.tick is not None else m.stop_reason is not None
        self.query_one(StopControl).show(stopped, m.stop_reason, m.stop_actor, m.stop_since, m.stopped_keys)
        self._show_spenders()

    def _show_spenders(self) -> None:
        rows = sorted(((k, v.day_usd) for k, v in self.model.keys.items()),
                      key=lambda kv: -kv[1])[:20]
        limits = {k: session_limit_text(self.model, k) for k, _ in rows}
        if (rows, limits) == self._keys_shown:
            return
        self._keys_shown = (rows, limits)
        t = self.query_one("#spenders", DataTable)
        t.clear()
        total = sum(v for _, v in rows) or 1.0
        for k, v in rows:
            budget = self.model.keys[k].budget_usd
            t.add_row(k, fmt_usd(v), fmt_usd(float(budget)) if budget else "-", f"{v / total:.0%}", limits[k], key=k)

