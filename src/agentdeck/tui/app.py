"""The console: a top bar, five panes, global keys, and one timer that feeds the panes.

Why it is small: panes own their rendering, ``commands`` owns the palette, ``screens`` the
modals, ``engine`` the connection to the gateway. This file wires them: a timer drains the
engine a few times a second (``[tui] refresh_hz``), every pane ingests its events, and only
the pane on screen (plus the top bar) is redrawn, inside one ``batch_update()``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Iterable

from textual import work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.theme import Theme
from textual.widgets import Footer, Input, TabbedContent, TabPane, TextArea

from agentdeck.bus import Alert, StatsTick, StopChanged
from agentdeck.config import TuiConfig
from agentdeck.gateway.admin import GatewayStatus
from agentdeck.tui import commands
from agentdeck.tui.engine import ConsoleEngine, EngineError
from agentdeck.tui.model import TopState, request_from_row
from agentdeck.tui.panes.base import LivePane
from agentdeck.tui.panes.budget import BudgetPane
from agentdeck.tui.panes.diagnose_pane import DiagnosePane
from agentdeck.tui.panes.flaky_pane import FlakyPane
from agentdeck.tui.panes.providers import ProvidersPane
from agentdeck.tui.panes.registry import PANES
from agentdeck.tui.panes.routing import RoutingPane
from agentdeck.tui.screens import CallDetailScreen, ConfirmScreen, HelpScreen, StopScreen, diagnosis_prefill
from agentdeck.tui.theme import DEFAULT_THEME, load_all_themes
from agentdeck.tui.widgets.call_table import CallTable
from agentdeck.tui.widgets.topbar import TopBar

DROPS_SHOWN_FOR_S = 30.0
# Embedded, the console and the gateway share one interpreter lock: fine for a dev session,
# but under sustained heavy traffic the slowest calls pay for the console's frames. Past this
# rate for this long, the console says once how to give the gateway a process of its own.
HEAVY_RPS, HEAVY_FOR_S = 100.0, 10.0


class ConsoleApp(App[None]):
    """The on-call console. ``engine`` is the only way it touches a gateway."""

    TITLE = "agentdeck"
    CSS = """
    Screen { background: $background; }
    TabbedContent { height: 1fr; }
    TabbedContent > ContentSwitcher { height: 1fr; }
    TabPane { padding: 0; height: 1fr; }
    """
    BINDINGS = [
        Binding("exclamation_mark", "emergency_stop", "STOP", priority=True, key_display="!"),
        Binding("R", "resume", "Resume", key_display="R"),
        Binding("question_mark", "help", "Keys", key_display="?"),
        # k9s's ':'; not a priority binding, so ':' typed in a text field stays a character.
        # (Its own action name: binding "command_palette" itself would drop Textual's ctrl+p.)
        Binding("colon", "palette", "Commands", key_display=":"),
        Binding("p", "toggle_pause", "Pause"),
        Binding("slash", "filter", "Filter", key_display="/"),
        Binding("q", "request_quit", "Quit"),
        Binding("ctrl+q", "request_quit", "Quit", show=False, priority=True),
        Binding("escape", "leave_text", "Leave text field", show=False),
        *[Binding(p.key, f"show_pane('{p.id}')", p.title, show=False) for p in PANES],
    ]

    def __init__(self, engine: ConsoleEngine, *, db_path: Path, tui: TuiConfig | None = None, theme: Theme | None = None,
                 project_dir: Path | None = None, banner: str | None = None, export_dir: Path | None = None) -> None:
        super().__init__()
        self.engine = engine
        self.tui = tui or TuiConfig()
        self.db_path = Path(db_path)  # the Diagnose and Flaky panes keep their records here
        self.project_dir = project_dir or Path.cwd()
        self.export_dir = export_dir or self.db_path.parent / "exports"
        self.banner = banner
        self.top = TopState()
        self.paused = False
        self.agentdeck_themes: dict[str, Theme] = load_all_themes()
        if theme is not None:
            self.agentdeck_themes[theme.name] = theme
        for t in self.agentdeck_themes.values():
            self.register_theme(t)
        self.theme = theme.name if theme is not None else (DEFAULT_THEME if DEFAULT_THEME in self.agentdeck_themes
                                                            else self.theme)
        self._generation_seen = 0
        self.pumps = 0
        self.events_seen = 0
        self._heavy_since: float | None = None
        self._reason_asked = False
        self.suggested_gateway_process = False
        self.clock = time.time  # tests pin it, so "active in the last minutes" is deterministic

    # -- layout -----------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield TopBar(id="topbar")
        with TabbedContent(initial=PANES[0].id, id="tabs"):
            for pane in PANES:
                with TabPane(f"{pane.key} {pane.title}", id=pane.id):
                    yield pane.build(self)
        yield Footer()

    def on_mount(self) -> None:
        self.live_panes: dict[str, LivePane] = {
            "routing": self.query_one(RoutingPane), "providers": self.query_one(ProvidersPane),
            "budget": self.query_one(BudgetPane),
        }
        self.topbar = self.query_one(TopBar)
        self.query_one(CallTable).focus()
        self._pump_timer = self.set_interval(1.0 / self.tui.refresh_hz, self._pump, name="pump")
        self.run_worker(self.engine.run(), name="engine", exclusive=True, group="engine")
        self._pump()
        if self.banner:
            self.notify(self.banner, title="agentdeck", timeout=8, markup=False)

    async def on_unmount(self) -> None:
        self._pump_timer.stop()
        await self.engine.close()

    @property
    def active_pane(self) -> str:
        return self.query_one(TabbedContent).active or "routing"

    # -- the pump: engine -> panes -> screen --------------------------------------------------------
    def _pump(self) -> None:
        """Drain the engine, feed every pane, redraw the visible one. Runs refresh_hz times a second."""
        if not self.is_running or self._exit:
            return
        self.pumps += 1
        events = self.engine.drain()
        now = self.clock()
        if events:
            self.events_seen += len(events)
            top = self.top
            for ev in events:
                if isinstance(ev, StatsTick):
                    top.on_tick(ev)
                    self._watch_load(ev)
                    self._learn_stop_reason(ev)
                elif isinstance(ev, StopChanged):
                    top.on_stop(ev)
                elif isinstance(ev, Alert):
                    top.alerts.append(ev)
            for pane in self.live_panes.values():
                wanted = [ev for ev in events if isinstance(ev, pane.EVENTS)]
                if wanted:
                    pane.ingest(wanted)
        if self.engine.generation != self._generation_seen:
            self._generation_seen = self.engine.generation
            self._backfill()
        self.top.note_drops(self.engine.dropped, now)
        routing = self.live_panes["routing"]
        assert isinstance(routing, RoutingPane)
        routing.savings_usd = self.top.savings_usd
        routing.coalesced = self.engine.dropped
        active = self.active_pane
        with self.batch_update():
            self._draw_topbar(now)
            pane = self.live_panes.get(active)
            if pane is not None:
                pane.flush()
        if active == "budget":
            budget = self.live_panes["budget"]
            assert isinstance(budget, BudgetPane)
            if budget.wants_status(now):
                self._poll_status()

    def _watch_load(self, tick: StatsTick) -> None:
        if self.engine.mode != "embedded" or self.suggested_gateway_process:
            return
        if tick.rps < HEAVY_RPS:
            self._heavy_since = None
            return
        if self._heavy_since is None:
            self._heavy_since = tick.ts
        elif tick.ts - self._heavy_since >= HEAVY_FOR_S:
            self.suggested_gateway_process = True
            self.notify(f"{tick.rps:,.0f} req/s through a gateway that shares this process with the console: "
                        "its frames add 1-3 ms to the slowest 1% of calls. For heavy traffic start the console "
                        "with --gateway-process (or [tui] gateway = \"process\" in the config) so the gateway "
                        "gets a process of its own.", title="heavy traffic", severity="warning", timeout=20,
                        markup=False)  # "[tui]" is text here, not a markup tag

    def _learn_stop_reason(self, tick: StatsTick) -> None:
        """A stop taken on another process of the cluster reaches this one in memory only (no StopChanged on its
        bus): the tick says stopped but not why, so ask the status document once for the reason."""
        if not tick.stopped:
            self._reason_asked = False
        elif self.top.stop_reason is None and not self._reason_asked:
            self._reason_asked = True
            self._fetch_stop_reason()

    @work(exclusive=True, group="stop-reason")
    async def _fetch_stop_reason(self) -> None:
        try:
            st = await self.engine.status()
        except EngineError:
            return
        if st.stopped and self.top.stopped and self.top.stop_reason is None:
            self.top.stop_reason, self.top.stop_actor, self.top.stop_since = st.stop_reason, st.stop.actor, st.stop.since

    def _draw_topbar(self, now: float) -> None:
        eng = self.engine
        if eng.mode == "embedded":
            link, ok = f"embedded {eng.url}", True
        elif eng.connected:
            link, ok = f"{eng.mode} {eng.url}", True
        else:
            link, ok = f"reconnecting to {eng.url}: {eng.last_error or 'connecting'}", False
        recent = self.top.drops_seen if now - self.top.drops_at < DROPS_SHOWN_FOR_S else 0
        self.topbar.show(self.top, paused=self.paused, link=link, link_ok=ok, dropped_recently=recent, now=now)

    @work(exclusive=True, group="backfill")
    async def _backfill(self) -> None:
        """Load recent history after (re)connecting: calls, alerts, stops, and the stop state."""
        try:
            rows = await self.engine.recent_requests(self.tui.max_rows)
            hist = await self.engine.history()
            st = await self.engine.status()
        except EngineError:
            return
        routing = self.live_panes["routing"]
        assert isinstance(routing, RoutingPane)
        routing.calls.seed(rows)
        budget = self.live_panes["budget"]
        assert isinstance(budget, BudgetPane)
        budget.model.seed_history(hist)
        budget.set_status(st)
        self._apply_status(st)

    def _apply_status(self, st: GatewayStatus) -> None:
        top = self.top
        top.stopped = st.stopped
        if top.stopped:
            top.stop_reason = st.stop_reason
        top.hour_usd, top.day_usd = st.spend.hour_usd, st.spend.day_usd
        top.hourly_budget, top.daily_budget = st.budget.hourly_usd, st.budget.daily_usd

    @work(exclusive=True, group="status")
    async def _poll_status(self) -> None:
        try:
            st = await self.engine.status()
        except EngineError:
            return
        budget = self.live_panes["budget"]
        assert isinstance(budget, BudgetPane)
        budget.set_status(st)

    # -- panes ------------------------------------------------------------------------------------
    def action_show_pane(self, name: str) -> None:
        self.query_one(TabbedContent).active = name

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        pane = self.live_panes.get(event.pane.id or "") if hasattr(self, "live_panes") else None
        if pane is not None:
            # Show the tab at once; bring its contents up to date right after that frame.
            self.call_after_refresh(pane.flush)

    def action_toggle_pause(self) -> None:
        self.paused = not self.paused
        routing = self.live_panes["routing"]
        assert isinstance(routing, RoutingPane)
        routing.set_paused(self.paused)
        self._draw_topbar(self.clock())

    def action_filter(self) -> None:
        self.action_show_pane("routing")
        routing = self.live_panes["routing"]
        assert isinstance(routing, RoutingPane)
        routing.open_filter()

    def on_call_table_selected(self, event: CallTable.Selected) -> None:
        ev = event.row.ev
        self.push_screen(CallDetailScreen(ev), lambda result: self._after_detail(result, ev))

    def _after_detail(self, result: str | None, ev: Any) -> None:
        if result == "diagnose":
            self.diagnose(diagnosis_prefill(ev))

    def diagnose(self, prefill: str | None) -> None:
        self.action_show_pane("diagnose")
        self.query_one(DiagnosePane).start(prefill or "")

    def run_flaky_tests(self) -> None:
        self.action_show_pane("flaky")
        self.query_one(FlakyPane).start()

    def action_leave_text(self) -> None:
        """escape in a text field hands the keys back to the console (1-5, !, q, ...)."""
        if isinstance(self.focused, (Input, TextArea)):
            self.screen.set_focus(None)
            self.notify("Keys act on the console again (1-5 panes, ! stop, ? help).", timeout=3)

    # -- emergency stop, resume, quit -------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "emergency_stop":
            # While typing (a filter, a diagnosis), '!' is a character; the palette and escape-then-! still stop.
            if isinstance(self.focused, (Input, TextArea)) and not isinstance(self.screen, StopScreen):
                return False
            return not isinstance(self.screen, StopScreen)
        return True

    def action_emergency_stop(self) -> None:
        if isinstance(self.screen, StopScreen):
            return
        routing = self.live_panes["routing"]
        assert isinstance(routing, RoutingPane)
        screen = StopScreen(in_flight=self.top.in_flight, sessions=routing.calls.sessions_active(now=self.clock()),
                            rps=self.top.rps, url=self.engine.url, mode=self.engine.mode)
        self.push_screen(screen, self._stop_confirmed)

    def _stop_confirmed(self, reason: str | None) -> None:
        if reason is None:
            self.notify("Emergency stop cancelled: traffic keeps flowing.", timeout=4)
            return
        self._send_stop(reason)

    @work(exclusive=True, group="command")
    async def _send_stop(self, reason: str) -> None:
        try:
            await self.engine.stop(reason)
        except EngineError as e:
            self.notify(f"STOP FAILED: {e}", severity="error", timeout=15, markup=False)
            return
        self.top.stopped, self.top.stop_reason, self.top.stop_actor = True, reason, "console"
        self.top.stop_since = time.time()
        self._draw_topbar(self.clock())
        self.notify("All agent traffic is stopped: new calls get 403. R or ctrl+p → Resume to lift it.",
                    severity="error", timeout=8)

    def action_resume(self) -> None:
        if not self.top.stopped:
            self.notify("Traffic is not stopped; nothing to resume.", timeout=3)
            return
        since = time.strftime("%H:%M:%S", time.localtime(self.top.stop_since)) if self.top.stop_since else "?"
        body = (f"Calls will flow through the gateway again.\nStopped since {since}"
                f"{' by ' + self.top.stop_actor if self.top.stop_actor else ''}: {self.top.stop_reason or '-'}")
        self.push_screen(ConfirmScreen("Resume all traffic?", body, "Resume"),
                         lambda ok: self._send_resume() if ok else None)

    @work(exclusive=True, group="command")
    async def _send_resume(self) -> None:
        try:
            await self.engine.resume()
        except EngineError as e:
            self.notify(f"Resume failed: {e}", severity="error", timeout=15, markup=False)
            return
        self.top.stopped = False
        self.top.stop_reason = self.top.stop_actor = None
        self.top.stop_since = None
        self._draw_topbar(self.clock())
        self.notify("Traffic resumed.", severity="information", timeout=4)

    def action_request_quit(self) -> None:
        serving = self.engine.owns_gateway_process and (self.top.rps > 0 or self.top.in_flight > 0)
        if not serving:
            self.exit()
            return
        inside = "inside this console" if self.engine.mode == "embedded" else "as this console's child process"
        body = (f"The gateway runs {inside} and is serving traffic "
                f"({self.top.rps:.1f} req/s, {self.top.in_flight} in flight).\n"
                f"Quitting stops it: agents will get connection errors.")
        self.push_screen(ConfirmScreen("Quit and stop the gateway?", body, "Quit", danger=True),
                         lambda ok: self.exit() if ok else None)

    def action_palette(self) -> None:
        self.action_command_palette()

    def action_help(self) -> None:
        where = f"gateway: {self.engine.url} ({self.engine.mode})  ·  theme: {self.theme}  ·  database: {self.db_path}"
        self.push_screen(HelpScreen(footer=where))

    # -- palette ----------------------------------------------------------------------------------
    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from commands.console_commands(self)
        yield from super().get_system_commands(screen)

    def set_console_theme(self, name: str) -> None:
        self.theme = name
        self.notify(f"Theme: {name}", timeout=2)
