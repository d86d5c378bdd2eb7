"""Routing: the live table of calls, the tier mix and the savings so far.

``p`` freezes the table (a PAUSED banner says how many calls arrived since), ``/`` filters
it by words, ``enter`` opens a call. The table is bounded (``[tui] max_rows``); older calls
live in SQLite.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Input, Static

from agentdeck.bus import Event, RequestCompleted
from agentdeck.tui.model import TIERS, CallLog, CallRow, fmt_usd, matches
from agentdeck.tui.panes.base import LivePane
from agentdeck.tui.widgets.call_table import CallTable


class RoutingSummary(Static):
    COMPONENT_CLASSES = {"summary--fast", "summary--balanced", "summary--smart", "summary--dim", "summary--good",
                         "summary--bad", "summary--filter"}
    DEFAULT_CSS = """
    RoutingSummary { height: 1; padding: 0 1; background: $surface; }
    RoutingSummary.-paused { background: $warning; color: $background; text-style: bold; }
    RoutingSummary > .summary--fast { color: $success; text-style: bold; }
    RoutingSummary > .summary--balanced { color: $primary; text-style: bold; }
    RoutingSummary > .summary--smart { color: $secondary; text-style: bold; }
    RoutingSummary > .summary--dim { color: $foreground-muted; }
    RoutingSummary > .summary--good { color: $success; }
    RoutingSummary > .summary--bad { color: $warning; }
    RoutingSummary > .summary--filter { color: $accent; text-style: bold; }
    """

    def build(self, log: CallLog, savings: float, shown: int, query: str, coalesced: int) -> Text:
        s = self.get_component_rich_style
        t = Text()
        counted = sum(log.tiers[k] for k in TIERS) or 1
        t.append("tiers ", s("summary--dim"))
        for k in TIERS:
            t.append(f"{k} {log.tiers[k] / counted:.0%}", s(f"summary--{k}"))
            t.append("  ")
        t.append("saved ", s("summary--dim"))
        t.append(fmt_usd(savings), s("summary--good" if savings >= 0 else "summary--bad"))
        if self.size.width >= 110:
            t.append(" vs all-balanced", s("summary--dim"))
        t.append("  ")
        t.append(f"{log.total:,} calls", s("summary--dim"))
        if log.failed:
            t.append(f" ({log.failed:,} failed)", s("summary--bad"))
        if query:
            t.append(f"  filter '{query}': {shown} shown", s("summary--filter"))
        elif log.total > shown:
            t.append(f"  newest {shown} shown", s("summary--dim"))
        if coalesced:
            t.append(f"  ⚡ {coalesced:,} coalesced", s("summary--bad"))
        return t


class RoutingPane(Vertical, LivePane):
    """The live call table with its summary line, PAUSED banner and filter box."""

    EVENTS = (RequestCompleted,)
    DEFAULT_CSS = """
    RoutingPane { height: 1fr; }
    RoutingPane #filter { display: none; height: 3; border: tall $accent; }
    RoutingPane.-filtering #filter { display: block; }
    RoutingPane CallTable { height: 1fr; }
    """
    BINDINGS = [Binding("escape", "clear_filter", "Clear filter", show=False)]

    def __init__(self, max_rows: int = 300, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.calls = CallLog(max_rows)
        self.paused = False
        self.filter_text = ""
        self.savings_usd = 0.0
        self.coalesced = 0
        self._held = 0
        self._frozen: list[CallRow] = []
        self._shown_version = -1
        self._summary_key: tuple[object, ...] | None = None

    def compose(self) -> ComposeResult:
        yield RoutingSummary(id="routing-summary")
        yield Input(placeholder="filter calls: words that must all appear (key, model, tier, rule, status) · "
                                "enter keeps · escape clears", id="filter")
        yield CallTable(id="calls")

    @property
    def table(self) -> CallTable:
        return self.query_one(CallTable)

    # -- LivePane ------------------------------------------------------------------------------
    def ingest(self, events: list[Event]) -> None:
        for ev in events:
            if isinstance(ev, RequestCompleted):
                self.calls.add(ev)
                if self.paused:
                    self._held += 1

    @property
    def banner_text(self) -> str:
        return (f"‖ PAUSED: the table is frozen; {self._held:,} new call{'s' if self._held != 1 else ''} since. "
                f"Press p to go live.")

    def flush(self) -> None:
        summary = self.query_one(RoutingSummary)
        if self.paused:
            # The summary line becomes the PAUSED banner: same height, so no layout pass on p.
            summary.update(self.banner_text, layout=False)
            self._summary_key = None
            if self._shown_version == -1:  # the filter changed while paused: filter the frozen rows
                self._shown_version = -2
                self.table.set_rows([r for r in self._frozen if matches(r, self.filter_text)]
                                    if self.filter_text else list(self._frozen))
            return
        if self.calls.version != self._shown_version:
            self._shown_version = self.calls.version
            rows = list(reversed(self.calls.rows))
            if self.filter_text:
                rows = [r for r in rows if matches(r, self.filter_text)]
            self.table.set_rows(rows)
        # The width is part of the key: the line says more when wide, and its first build can
        # come before layout (width 0), with nothing new arriving afterwards to rebuild it.
        key = (self.calls.version, round(self.savings_usd, 4), len(self.table.rows), self.filter_text, self.coalesced,
               summary.size.width >= 110)
        if key != self._summary_key:
            self._summary_key = key
            summary.update(summary.build(self.calls, self.savings_usd, len(self.table.rows), self.filter_text, self.coalesced),
                           layout=False)

    # -- pause and filter -------------------------------------------------------------------------
    def set_paused(self, paused: bool) -> None:
        self.paused = paused
        self._held = 0
        self._frozen = list(reversed(self.calls.rows)) if paused else []
        if not paused:
            self._shown_version = -3  # catch up with everything that arrived while paused
        # A class on the one-line summary (a leaf), not on the pane: restyling the pane's subtree
        # costs tens of milliseconds under load.
        self.query_one(RoutingSummary).set_class(paused, "-paused")
        self.flush()

    def open_filter(self) -> None:
        self.add_class("-filtering")
        box = self.query_one("#filter", Input)
        box.value = self.filter_text
        box.focus()

    def set_filter(self, query: str) -> None:
        self.filter_text = query.strip()
        self._shown_version = -1
        self.flush()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "filter":
            event.stop()
            self.set_filter(event.value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "filter":
            event.stop()
            self.set_filter(event.value)
            if not self.filter_text:
                self.remove_class("-filtering")
            self.table.focus()

    def action_clear_filter(self) -> None:
        if self.has_class("-filtering") or self.filter_text:
            self.query_one("#filter", Input).value = ""
            self.set_filter("")
            self.remove_class("-filtering")
            self.table.focus()
