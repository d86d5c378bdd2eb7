"""The always-visible top bar: LIVE / STOPPED, PAUSED, spend against budgets, requests/s, alerts
(and in cluster mode how many processes serve, with the cluster's req/s and calls in flight).

Why one Static that builds a Rich ``Text`` rather than a row of Labels: on an 80-column
terminal the bar has to drop its least important parts (savings, then in-flight, then the
link state) instead of wrapping or truncating LIVE/STOPPED away. The parts are added in
order of importance and each carries a priority. Colours come from component classes
styled with the theme's variables.
"""

from __future__ import annotations

import time

from rich.style import Style
from rich.text import Text
from textual.widgets import Static

from agentdeck.tui.model import TopState, fmt_clock, fmt_usd


class TopBar(Static):
    """Two lines when stopped (the reason and how to resume), one line otherwise."""

    COMPONENT_CLASSES = {
        "topbar--live", "topbar--stopped", "topbar--paused", "topbar--ok", "topbar--warn", "topbar--over",
        "topbar--dim", "topbar--alert", "topbar--label",
    }
    DEFAULT_CSS = """
    TopBar { height: 1; background: $panel; color: $foreground; padding: 0 1; }
    TopBar.-stopped { height: 2; background: $error 30%; }
    TopBar > .topbar--live { background: $success; color: $background; text-style: bold; }
    TopBar > .topbar--stopped { background: $error; color: $background; text-style: bold; }
    TopBar > .topbar--paused { background: $warning; color: $background; text-style: bold; }
    TopBar > .topbar--ok { color: $success; }
    TopBar > .topbar--warn { color: $warning; text-style: bold; }
    TopBar > .topbar--over { color: $error; text-style: bold; }
    TopBar > .topbar--dim { color: $foreground-muted; }
    TopBar > .topbar--alert { color: $error; text-style: bold; }
    TopBar > .topbar--label { color: $foreground-muted; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id)
        self._last: tuple[object, ...] | None = None

    def _s(self, name: str) -> Style:
        return self.get_component_rich_style(f"topbar--{name}")

    def _meter_style(self, spent: float, budget: float) -> Style:
        if budget <= 0:
            return self._s("dim")
        share = spent / budget
        return self._s("over" if share >= 1.0 else "warn" if share >= 0.8 else "ok")

    def show(self, st: TopState, *, paused: bool, link: str, link_ok: bool, dropped_recently: int,
             now: float | None = None) -> None:
        """Redraw if anything visible changed (cheap to call every frame)."""
        now = time.time() if now is None else now
        alerts = st.active_alerts(now)
        c = st.cluster
        cluster_key = None if not c else (len(c.get("processes") or []), round(float(c.get("rps") or 0.0), 1),
                                          c.get("in_flight"), c.get("up", True))
        key = (cluster_key, st.stopped, st.stop_reason, st.stop_actor, round(st.rps, 1), st.in_flight, round(st.hour_usd, 4),
               round(st.day_usd, 4), st.hourly_budget, st.daily_budget, round(st.savings_usd, 3), paused, link,
               link_ok, dropped_recently, len(alerts), alerts[-1].message if alerts else None, self.size.width)
        if key == self._last:
            return
        self._last = key
        self.set_class(st.stopped, "-stopped")  # height 1 <-> 2: this one restyles and lays out
        self.update(self.build(st, paused=paused, link=link, link_ok=link_ok, dropped_recently=dropped_recently,
                               alerts=len(alerts), last_alert=alerts[-1].message if alerts else None),
                    layout=False)

    def build(self, st: TopState, *, paused: bool, link: str, link_ok: bool, dropped_recently: int, alerts: int,
              last_alert: str | None) -> Text:
        width = max(20, self.size.width - 2 if self.size.width else 120)
        parts: list[tuple[int, Text]] = []  # (priority: lower = kept longer, text)

        def add(prio: int, *chunks: tuple[str, Style | None]) -> None:
            t = Text()
            for s, style in chunks:
                t.append(s, style or Style())
            parts.append((prio, t))

        if st.stopped:
            add(0, (" ■ STOPPED ", self._s("stopped")))
        else:
            add(0, (" ● LIVE ", self._s("live")))
        if paused:
            add(0, (" ‖ PAUSED ", self._s("paused")))
        add(1, ("hour ", self._s("label")), (fmt_usd(st.hour_usd), self._meter_style(st.hour_usd, st.hourly_budget)),
            (f"/{fmt_usd(st.hourly_budget)}", self._s("dim")))
        add(1, ("day ", self._s("label")), (fmt_usd(st.day_usd), self._meter_style(st.day_usd, st.daily_budget)),
            (f"/{fmt_usd(st.daily_budget)}", self._s("dim")))
        c = st.cluster
        add(3 if c else 2, (f"{st.rps:.1f}", None), (" req/s", self._s("label")))  # this process's
        if c:  # cluster mode: the spend and stop above are the cluster's; how many processes share them
            n = len(c.get("processes") or [])
            if c.get("up", True):
                add(2, ("cluster ", self._s("label")), (f"{n} proc{'s' if n != 1 else ''}", None))
                add(4, (f"({float(c.get('rps') or 0.0):.1f} req/s, {int(c.get('in_flight') or 0)} in flight)", self._s("dim")))
            else:
                add(1, ("cluster: Redis not answering", self._s("over")))
        add(5, (f"{st.in_flight}", None), (" in flight", self._s("label")))
        if alerts:
            msg = f"⚠ {alerts} alert{'s' if alerts != 1 else ''}"
            add(2, (msg, self._s("alert")))
            if last_alert:
                add(7, (last_alert[:60], self._s("alert")))
        else:
            add(6, ("no alerts", self._s("dim")))
        if dropped_recently:
            add(3, (f"⚡ {dropped_recently:,} events dropped", self._s("warn")))
        add(6, (f"saved {fmt_usd(st.savings_usd)}", self._s("ok" if st.savings_usd >= 0 else "warn")))
        add(4 if link_ok else 1, (link, self._s("dim") if link_ok else self._s("over")))

        sep = "  "
        kept = list(parts)
        while kept and sum(p[1].cell_len for p in kept) + len(sep) * (len(kept) - 1) > width:
            worst = max(p[0] for p in kept)
            if worst == 0:
                break
            idx = max(i for i, p in enumerate(kept) if p[0] == worst)
            kept.pop(idx)
        line = Text(sep).join(t for _, t in kept)
        line.truncate(width)
        if st.stopped:
            who = f" by {st.stop_actor}" if st.stop_actor else ""
            when = f" at {fmt_clock(st.stop_since)}" if st.stop_since else ""
            head = f"Every new call gets 403{who}{when}: "
            tail = "  ·  R or ctrl+p → Resume"
            reason = st.stop_reason or "emergency stop"
            room = width - len(head) - len(tail)
            if len(reason) > room:  # keep how to resume on screen; cut the reason instead
                reason = reason[:max(0, room - 1)] + "…"
            second = Text()
            second.append(head + reason, self._s("over"))
            second.append(tail, self._s("label"))
            second.truncate(width)
            line.append("\n")
            line.append_text(second)
        return line
