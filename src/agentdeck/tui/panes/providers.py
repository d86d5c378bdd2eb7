"""Providers: what AIMD is doing, per provider, over the last five minutes.

Two graphs per provider: the requests/s limit against the requests/s actually sent, and
the in-flight slot limit against the calls in flight, with each second that saw a 429
marked ``x`` on the limit line. The current values sit beside the graphs, so the pane
answers "are we being throttled, and is the limiter keeping us under the provider's
ceiling?" at a glance. In cluster mode a table of the cluster's processes sits on top (the
limits are then the cluster's, and the in-flight graph counts slots held across it).
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Static

from agentdeck.bus import Event, LimitChanged, ProviderThrottled, RequestCompleted, StatsTick
from agentdeck.tui.model import ClusterModel, ProviderSeries, ProvidersModel
from agentdeck.tui.panes.base import LivePane
from agentdeck.tui.widgets.graph import Line, LineGraph
from agentdeck.tui.widgets.processes import ClusterProcesses


class ProviderStats(Static):
    COMPONENT_CLASSES = {"stats--name", "stats--dim", "stats--warn", "stats--bad", "stats--good"}
    DEFAULT_CSS = """
    ProviderStats { width: 30; height: 1fr; padding: 0 1; }
    ProviderStats > .stats--name { color: $primary; text-style: bold; }
    ProviderStats > .stats--dim { color: $foreground-muted; }
    ProviderStats > .stats--warn { color: $warning; text-style: bold; }
    ProviderStats > .stats--bad { color: $error; text-style: bold; }
    ProviderStats > .stats--good { color: $success; }
    """

    def build(self, name: str, s: ProviderSeries) -> Text:
        st = self.get_component_rich_style
        snap: dict[str, Any] = s.last
        t = Text()
        t.append(f"{name}\n", st("stats--name"))

        def row(label: str, value: str, style: str = "") -> None:
            t.append(f"{label:<11}", st("stats--dim"))
            t.append(f"{value}\n", st(style) if style else "")

        rps = s.rps[-1] if s.rps else 0.0
        lim = float(snap.get("rps_limit", 0.0) or 0.0)
        row("rps limit", f"{lim:.1f}/s")
        row("actual", f"{rps:.1f}/s", "stats--warn" if lim and rps >= lim * 0.95 else "")
        slots, inflight = int(snap.get("slots_limit", 0) or 0), int(snap.get("in_flight", 0) or 0)
        if "cluster_in_flight" in snap:  # cluster mode: the slots are shared; this process holds some of them
            held = int(snap.get("cluster_in_flight") or 0)
            row("slots", f"{held}/{slots} cluster", "stats--warn" if slots and held >= slots else "")
            row("this proc", f"{inflight} in flight")
        else:
            row("slots", f"{inflight}/{slots} in use", "stats--warn" if slots and inflight >= slots else "")
        queued = int(snap.get("queued", 0) or 0) + int(snap.get("pace_queued", 0) or 0)
        row("queued", str(queued), "stats--warn" if queued else "")
        recent = sum(s.throttled)
        total = int(snap.get("rate_limited_total", 0) or 0)
        row("429s", f"{total} ({recent} in 5m)", "stats--bad" if recent else "stats--good")
        thr = int(snap.get("throttled_total", 0) or 0)
        if thr:
            row("refused", f"{thr} (queue full)", "stats--warn")
        breaker = str(snap.get("breaker", "closed"))
        row("breaker", breaker, "stats--bad" if breaker != "closed" else "stats--good")
        if snap.get("header_paced"):
            row("pacing", "provider headers", "stats--warn")
        if not snap.get("enabled", True):
            row("aimd", "off", "stats--dim")
        if s.last_change:
            t.append(s.last_change, st("stats--dim"))
        return t


class ProviderCard(Horizontal):
    DEFAULT_CSS = """
    ProviderCard { height: 1fr; min-height: 9; max-height: 18; border-bottom: solid $panel; }
    """

    def __init__(self, name: str, window_s: int) -> None:
        super().__init__(classes="provider-card")
        self.provider = name
        self.window_s = window_s

    def compose(self) -> ComposeResult:
        yield ProviderStats("")
        yield LineGraph("requests/s", window_s=self.window_s, classes="rps-graph")
        yield LineGraph("in flight", window_s=self.window_s, classes="slots-graph")

    def show(self, s: ProviderSeries, version: int, now: float) -> None:
        xs = [t - now for t in s.t]
        marks_x = [x for x, n in zip(xs, s.throttled) if n]
        marks_y = [y for y, n in zip(s.rps_limit, s.throttled) if n]
        self.query_one(".rps-graph", LineGraph).set_data(
            [Line("limit", xs, list(s.rps_limit), "accent"), Line("actual", xs, list(s.rps), "primary")],
            (marks_x, marks_y), "429", version)
        smarks_y = [y for y, n in zip(s.slots_limit, s.throttled) if n]
        self.query_one(".slots-graph", LineGraph).set_data(
            [Line("slot limit", xs, list(s.slots_limit), "accent"), Line("in flight", xs, list(s.in_flight), "primary")],
            (marks_x, smarks_y), "429", version)
        stats = self.query_one(ProviderStats)
        stats.update(stats.build(self.provider, s), layout=False)


class ProvidersPane(VerticalScroll, LivePane):
    """One card per provider, added as providers appear in the stats ticks."""

    EVENTS = (StatsTick, LimitChanged, RequestCompleted, ProviderThrottled)
    DEFAULT_CSS = """
    ProvidersPane { height: 1fr; }
    ProvidersPane #providers-empty { color: $foreground-muted; padding: 1 2; }
    ProvidersPane.-narrow .slots-graph { display: none; }
    ProvidersPane.-narrow ProviderStats { width: 26; }
    """
    NARROW_BELOW = 110

    def __init__(self, window_s: int = 300, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.model = ProvidersModel(window_s)
        self.cluster = ClusterModel()
        self._cards: dict[str, ProviderCard] = {}
        self._procs: ClusterProcesses | None = None
        self._shown = -1
        self._procs_shown = -1

    def compose(self) -> ComposeResult:
        yield Static("waiting for the gateway's first stats tick (once a second)…", id="providers-empty")

    def ingest(self, events: list[Event]) -> None:
        m = self.model
        for ev in events:
            if isinstance(ev, RequestCompleted):
                m.on_request(ev)
            elif isinstance(ev, StatsTick):
                m.on_tick(ev)
                self.cluster.on_tick(ev.cluster)
            elif isinstance(ev, LimitChanged):
                m.on_limit(ev.provider, ev.reason, ev.rps_limit, ev.slots_limit, ev.ts)
        if self.cluster.seen and self._procs is None:
            self._procs = ClusterProcesses("", id="cluster-processes")
            for empty in self.query("#providers-empty"):
                empty.remove()
            if self.children:
                self.mount(self._procs, before=0)
            else:
                self.mount(self._procs)
        if any(n not in self._cards for n in m.series):
            self._mount_new_cards()  # while hidden, so the first visit does not pay for mounting

    def _mount_new_cards(self) -> None:
        new = sorted(n for n in self.model.series if n not in self._cards)
        if not new:
            return
        for empty in self.query("#providers-empty"):
            empty.remove()
        for name in new:
            card = ProviderCard(name, self.model.window_s)
            self._cards[name] = card
            self.mount(card)
        self._shown = -1

    def flush(self) -> None:
        if self._procs is not None and self._procs.is_mounted and self.cluster.version != self._procs_shown:
            self._procs_shown = self.cluster.version
            self._procs.show(self.cluster)
        m = self.model
        if m.version == self._shown or m.last_tick_ts is None:
            return
        self._shown = m.version
        self._redraw_all()

    def _redraw_all(self) -> None:
        m = self.model
        now = m.last_tick_ts or 0.0
        for name, card in self._cards.items():
            if card.is_mounted and name in m.series:
                card.show(m.series[name], m.version, now)

    def on_resize(self) -> None:
        self.set_class(self.size.width < self.NARROW_BELOW, "-narrow")
        self._shown = -1
        self._procs_shown = -1  # the process table drops columns on a narrow terminal
