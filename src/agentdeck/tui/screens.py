"""Modal screens: the emergency-stop confirmation, other confirmations, a call's details, help.

Why modals with priority ``enter``/``escape`` bindings: in an emergency the same two keys
must do the same two things in every dialog (``enter`` confirms, ``escape`` cancels),
whatever has focus inside it. The buttons are there for the mouse; the Cancel button holds
the focus so a stray ``space`` never confirms anything.
"""

from __future__ import annotations

import json
import re
from typing import Any

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from agentdeck.bus import RequestCompleted
from agentdeck.tui.model import fmt_clock, fmt_ms, fmt_usd

_MODAL_CSS = """
{cls} {{ align: center middle; background: $background 60%; }}
{cls} > Vertical {{ width: 76; max-width: 100%; height: auto; max-height: 100%; border: thick $panel;
    background: $surface; padding: 0 1; }}
{cls} .title {{ text-style: bold; width: 100%; margin-bottom: 1; }}
{cls} .body {{ width: 100%; height: auto; }}
{cls} .buttons {{ height: auto; width: 100%; align-horizontal: right; }}
{cls} Button {{ margin-left: 2; }}
"""


class ConfirmScreen(ModalScreen[bool]):
    """Yes/no with ``enter`` = yes and ``escape`` = no."""

    DEFAULT_CSS = _MODAL_CSS.format(cls="ConfirmScreen") + """
    ConfirmScreen.-danger > Vertical { border: thick $error; }
    ConfirmScreen.-danger .title { color: $error; }
    """
    BINDINGS = [
        Binding("enter", "confirm", "Confirm", priority=True),
        Binding("escape", "cancel", "Cancel", priority=True),
    ]

    def __init__(self, title: str, body: str | Text, confirm_label: str, *, danger: bool = False) -> None:
        super().__init__(classes="-danger" if danger else None)
        self._title, self._body, self._label, self._danger = title, body, confirm_label, danger

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self._title, classes="title")
            yield Static(self._body, classes="body")
            with Horizontal(classes="buttons"):
                yield Button("Cancel (esc)", id="cancel")
                yield Button(f"{self._label} (enter)", id="confirm", variant="error" if self._danger else "primary")

    def on_mount(self) -> None:
        self.query_one("#cancel", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "confirm")

    def action_confirm(self) -> None:
        self.dismiss(True)

    def action_cancel(self) -> None:
        self.dismiss(False)


class StopScreen(ModalScreen["str | None"]):
    """The emergency stop: says what will happen, ``enter`` stops everything, ``escape`` backs out.

    Dismisses with the reason (sent to every refused caller in the 403) or None.
    """

    DEFAULT_CSS = _MODAL_CSS.format(cls="StopScreen") + """
    StopScreen > Vertical { border: thick $error; }
    StopScreen .title { color: $error; }
    StopScreen Input { margin-top: 0; }
    StopScreen .hint { color: $foreground-muted; }
    """
    BINDINGS = [
        Binding("enter", "confirm", "Stop all traffic", priority=True),
        Binding("escape", "cancel", "Cancel", priority=True),
    ]
    DEFAULT_REASON = "emergency stop from the agentdeck console"

    def __init__(self, *, in_flight: int, sessions: list[str], rps: float, url: str, mode: str) -> None:
        super().__init__()
        self.in_flight, self.sessions, self.rps, self.url, self.mode = in_flight, sessions, rps, url, mode

    def describe(self) -> Text:
        t = Text()
        t.append("Every new call through the gateway will be refused with 403 ")
        t.append("(x-should-retry: false)", style="bold")
        t.append(" until you resume.\n")
        calls = "call" if self.in_flight == 1 else "calls"
        t.append(f"{self.in_flight} {calls} in flight", style="bold")
        t.append(" will be ended (streams are cut within 1 s).\n")
        if self.sessions:
            shown = ", ".join(self.sessions[:8]) + (f" and {len(self.sessions) - 8} more" if len(self.sessions) > 8 else "")
            t.append(f"{len(self.sessions)} keys/sessions", style="bold")
            t.append(f" active in the last 5 minutes are affected: {shown}.\n")
        else:
            t.append("No key or session has sent a call in the last 5 minutes.\n")
        t.append(f"Now {self.rps:.1f} req/s through {self.url} ({self.mode}). The stop survives a restart.")
        return t

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("■ Emergency stop: all agent traffic", classes="title")
            yield Static(self.describe(), classes="body")
            yield Input(value=self.DEFAULT_REASON, placeholder="reason (shown to every refused caller)", id="reason")
            yield Static("tab to edit the reason · enter stops · escape cancels", classes="hint")
            with Horizontal(classes="buttons"):
                yield Button("Cancel (esc)", id="cancel")
                yield Button("Stop all traffic (enter)", id="confirm", variant="error")

    def on_mount(self) -> None:
        self.query_one("#cancel", Button).focus()

    def _reason(self) -> str:
        return self.query_one("#reason", Input).value.strip() or self.DEFAULT_REASON

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(self._reason() if event.button.id == "confirm" else None)

    def action_confirm(self) -> None:
        self.dismiss(self._reason())

    def action_cancel(self) -> None:
        self.dismiss(None)


def describe_call(ev: RequestCompleted) -> Text:
    """Everything the gateway recorded about one call, for the details modal."""
    t = Text()

    def line(label: str, value: Any, style: str = "") -> None:
        t.append(f"{label:<15}", style="dim")
        t.append(f"{value}\n", style=style)

    line("request id", ev.id)
    line("time", f"{fmt_clock(ev.ts)}")
    line("key / session", ev.key + (f" / {ev.session}" if ev.session else ""))
    line("endpoint", f"{ev.protocol} {ev.endpoint}".strip() or "-")
    line("model", f"{ev.model_requested} → {ev.model} ({ev.provider or '?'})")
    line("tier / rule", f"{ev.tier or '-'} / {ev.rule or '-'}")
    if ev.escalations:
        line("escalations", ", ".join(ev.escalations))
    if ev.fallback_from:
        line("fallback from", ev.fallback_from)
    line("status", ev.status, "bold")
    line("latency", fmt_ms(ev.latency_ms))
    line("attempts", ev.attempts)
    line("tokens", f"{ev.input_tokens} in, {ev.output_tokens} out, {ev.cache_read_tokens} cache read, "
                   f"{ev.cache_write_tokens} cache write")
    line("cost", f"{fmt_usd(ev.cost_usd)}{' (estimated)' if ev.estimated else ''}; "
                 f"all-balanced baseline {fmt_usd(ev.baseline_cost_usd)}")
    line("stream", "yes" if ev.stream else "no")
    if ev.error:
        line("error", ev.error, "bold")
    if ev.response_body:
        t.append("\nresponse body\n", style="dim")
        t.append(ev.response_body[:2000] + "\n")
    if ev.request_body:
        t.append("\nrequest body\n", style="dim")
        t.append(ev.request_body[:2000] + "\n")
    return t


def _last_user_text(request_body: str | None) -> str | None:
    """The task the agent sent (last user message), when the gateway logged the body."""
    if not request_body:
        return None
    try:
        body = json.loads(request_body)
    except ValueError:
        return None
    msgs = body.get("messages") if isinstance(body, dict) else None
    if not isinstance(msgs, list):
        return body.get("input") if isinstance(body, dict) and isinstance(body.get("input"), str) else None
    for m in reversed(msgs):
        if isinstance(m, dict) and m.get("role") == "user":
            c = m.get("content")
            if isinstance(c, list):
                c = " ".join(p.get("text", "") for p in c if isinstance(p, dict))
            if isinstance(c, str):
                return re.sub(r"\s*\[mock:[^\]]*\]", "", c).strip()
    return None


def diagnosis_prefill(ev: RequestCompleted) -> str:
    """The error text the Diagnose pane starts from when asked to diagnose a failed call."""
    parts = [f"{ev.status} from {ev.model or ev.model_requested} ({ev.provider or 'gateway'}) on {ev.endpoint or 'a call'}"]
    if ev.error:
        parts.append(ev.error)
    if ev.response_body:
        try:
            body = json.loads(ev.response_body)
            msg = (body.get("error") or {}).get("message") if isinstance(body, dict) else None
            if msg:
                parts.append(str(msg))
        except ValueError:
            parts.append(ev.response_body[:300])
    text = ": ".join(parts)
    task = _last_user_text(ev.request_body)
    if task:
        text += f"\nTask: {task[:500]}"
    return text


class CallDetailScreen(ModalScreen["str | None"]):
    """One call in full; dismisses with ``"diagnose"`` when the user asks to diagnose a failed call."""

    DEFAULT_CSS = _MODAL_CSS.format(cls="CallDetailScreen") + """
    CallDetailScreen > Vertical { width: 100; }
    CallDetailScreen VerticalScroll { height: auto; max-height: 75vh; }
    CallDetailScreen.-failed > Vertical { border: thick $warning; }
    """
    BINDINGS = [
        Binding("escape,q", "close", "Close", priority=True),
        Binding("d", "diagnose", "Diagnose this"),
    ]

    def __init__(self, ev: RequestCompleted) -> None:
        self.ev = ev
        self.failed = ev.status >= 400 or ev.error is not None
        super().__init__(classes="-failed" if self.failed else None)

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"Call {self.ev.id}", classes="title")
            with VerticalScroll():
                yield Static(describe_call(self.ev), classes="body")
            with Horizontal(classes="buttons"):
                if self.failed:
                    yield Button("Diagnose this (d)", id="diagnose", variant="warning")
                yield Button("Close (esc)", id="close")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "diagnose":
            return self.failed
        return True

    def on_mount(self) -> None:
        self.query_one("#close", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss("diagnose" if event.button.id == "diagnose" else None)

    def action_close(self) -> None:
        self.dismiss(None)

    def action_diagnose(self) -> None:
        self.dismiss("diagnose")


HELP_ROWS: tuple[tuple[str, str, str], ...] = (
    ("anywhere", "!", "emergency stop: refuse all agent traffic (asks first; enter confirms)"),
    ("anywhere", "R", "resume traffic after a stop (asks first)"),
    ("anywhere", "?", "this help"),
    ("anywhere", "ctrl+p", "command palette: stop, resume, pause, filter, theme, diagnose, flaky, export"),
    ("anywhere", ":", "command palette too (as in k9s)"),
    ("anywhere", "1-5", "switch pane: routing, providers, budget, diagnose, flaky"),
    ("anywhere", "tab / shift+tab", "move focus"),
    ("text field", "escape", "leave the field: keys act on the console again (then ! stops, 1-5 switch)"),
    ("anywhere", "q", "quit (asks first while the gateway serves traffic)"),
    ("dialogs", "enter / escape", "confirm / cancel"),
    ("routing", "p", "pause / unpause the live table (a PAUSED banner shows)"),
    ("routing", "/", "filter calls by words (key, model, tier, rule, status); escape clears"),
    ("tables", "j/k or up/down", "move through rows (calls, spenders, the diagnosis log); pgup/pgdn a page"),
    ("tables", "g / G", "top / bottom (in the calls: newest / oldest; also home / end)"),
    ("routing", "enter", "a call's details; on a failed call, d = diagnose this"),
    ("budget", "!", "the kill switch (same as everywhere)"),
)


class HelpScreen(ModalScreen[None]):
    """Every key, in one place."""

    DEFAULT_CSS = _MODAL_CSS.format(cls="HelpScreen") + """
    HelpScreen > Vertical { width: 100; }
    HelpScreen VerticalScroll { height: auto; max-height: 85vh; }
    HelpScreen .scope { color: $accent; }
    """
    BINDINGS = [Binding("escape,q,question_mark", "close", "Close", priority=True)]

    def __init__(self, extra: list[tuple[str, str, str]] | None = None, footer: str = "") -> None:
        super().__init__()
        self.rows = list(HELP_ROWS) + list(extra or [])
        self.footer = footer

    def compose(self) -> ComposeResult:
        table = Table(box=None, show_header=False, expand=True, padding=(0, 1))
        table.add_column("where", style="dim", no_wrap=True)
        table.add_column("keys", style="bold", no_wrap=True)
        table.add_column("what", ratio=1)
        for scope, keys, what in self.rows:
            table.add_row(scope, keys, what)
        with Vertical():
            yield Label("Keys  (escape closes)", classes="title")
            with VerticalScroll():
                yield Static(table, classes="body")
                if self.footer:
                    yield Static(Text(self.footer, style="dim"), classes="body")

    def action_close(self) -> None:
        self.dismiss(None)
