"""The live table of calls: a virtual list that renders only the lines on screen.

Why not ``DataTable``: at 1,000 calls/s a DataTable re-measures every cell of every row on
each batch (about 250 ms of CPU for 300 rows on the machine this was built on), which
would make the console the slowest part of the system. Here each call is formatted once
when it arrives (``model.make_row``) and a frame costs one ``Strip`` per visible line,
whatever the traffic. Rows are newest first; the cursor sticks to the call it is on, so a
row you are reading does not run away while new calls arrive (at the top it follows the
newest call).
"""

from __future__ import annotations

from rich.cells import set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from agentdeck.tui.keys import table_bindings
from agentdeck.tui.model import COLUMNS, CallRow

GAP = 1
_PLAIN = Style()


def layout_columns(width: int) -> list[tuple[int, str, int]]:
    """(cell index, title, width) of the columns that fit ``width``, dropping low-priority ones first."""
    cols = [(i, title, w, prio) for i, (_, title, w, prio) in enumerate(COLUMNS)]
    while cols and sum(c[2] for c in cols) + GAP * (len(cols) - 1) > width:
        worst = max(c[3] for c in cols)
        if worst == 0:
            # Nothing optional left: shrink the flexible columns (who, model) to fit.
            over = sum(c[2] for c in cols) + GAP * (len(cols) - 1) - width
            out = []
            for i, title, w, prio in cols:
                if COLUMNS[i][0] in ("who", "model") and over > 0:
                    cut = min(over, w - 8)
                    w -= cut
                    over -= cut
                out.append((i, title, w, prio))
            cols = out
            break
        drop = [c for c in cols if c[3] == worst][-1]
        cols.remove(drop)
    spare = width - (sum(c[2] for c in cols) + GAP * (len(cols) - 1))
    if spare > 0:
        # Give spare room to the key/session and model columns (names are what people read).
        out = []
        for i, title, w, prio in cols:
            if COLUMNS[i][0] == "who":
                add = min(spare, 12)
                w += add
                spare -= add
            elif COLUMNS[i][0] == "model":
                add = min(spare, 8)
                w += add
                spare -= add
            out.append((i, title, w, prio))
        cols = out
    return [(i, title, w) for i, title, w, _ in cols]


class CallTable(ScrollView, can_focus=True):
    """Newest-first list of calls with a sticky cursor; ``enter`` posts :class:`CallTable.Selected`."""

    COMPONENT_CLASSES = {
        "call-table--header", "call-table--cursor", "call-table--ok", "call-table--warn", "call-table--error",
        "call-table--fast", "call-table--balanced", "call-table--smart", "call-table--dim",
    }
    DEFAULT_CSS = """
    CallTable { background: $surface; scrollbar-size-vertical: 1; }
    CallTable > .call-table--header { color: $foreground-muted; text-style: bold; background: $panel; }
    CallTable > .call-table--cursor { background: $panel; text-style: bold; }
    CallTable:focus > .call-table--cursor { background: $primary 35%; }
    CallTable > .call-table--ok { color: $success; }
    CallTable > .call-table--warn { color: $warning; }
    CallTable > .call-table--error { color: $error; text-style: bold; }
    CallTable > .call-table--fast { color: $success; }
    CallTable > .call-table--balanced { color: $primary; }
    CallTable > .call-table--smart { color: $secondary; }
    CallTable > .call-table--dim { color: $foreground-muted; }
    """
    BINDINGS = [
        *table_bindings("cursor(1)", "cursor(-1)", "top", "bottom"),  # g = newest (the top), G = oldest
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("enter", "select", "Details"),
    ]

    cursor: reactive[int] = reactive(0, always_update=True, repaint=True)

    class Selected(Message):
        """The user asked for a call's details."""

        def __init__(self, row: CallRow) -> None:
            super().__init__()
            self.row = row

    def __init__(self, *, name: str | None = None, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._rows: list[CallRow] = []
        self._cols: list[tuple[int, str, int]] = layout_columns(120)
        self._width = 0
        self.empty_text = "no calls yet"
        self._styles: dict[str, Style] = {}
        # A row's line, keyed by (call id, is-cursor): new calls push every row down one line each
        # frame, so without this each visible row would be formatted again four times a second.
        self._lines: dict[tuple[str, bool], Strip] = {}

    def notify_style_update(self) -> None:
        # Theme or CSS changed: drop the cached styles (computing them walks the DOM, too slow per line).
        self._styles = {}
        self._lines = {}
        super().notify_style_update()

    def on_focus(self) -> None:
        self._styles, self._lines = {}, {}
        self.refresh()

    def on_blur(self) -> None:
        self._styles, self._lines = {}, {}
        self.refresh()

    def _style(self, name: str) -> Style:
        st = self._styles.get(name)
        if st is None:
            if name == "base":
                st = self.rich_style
            elif name == "cursor-row":
                st = self._style("base") + self.get_component_rich_style("call-table--cursor")
            else:
                st = self.get_component_rich_style(name)
            self._styles[name] = st
        return st

    # -- data -----------------------------------------------------------------------------
    @property
    def rows(self) -> list[CallRow]:
        return self._rows

    @property
    def current(self) -> CallRow | None:
        return self._rows[self.cursor] if 0 <= self.cursor < len(self._rows) else None

    def set_rows(self, rows: list[CallRow]) -> None:
        """Replace what is shown (newest first), keeping the cursor on the same call."""
        old = self.current
        following = self.cursor == 0 and self.scroll_y == 0
        self._rows = rows
        self.virtual_size = Size(self._width or self.size.width, len(rows) + 1)
        if not rows:
            self.cursor = 0
        elif following or old is None:
            self.cursor = 0 if following else min(self.cursor, len(rows) - 1)
        else:
            idx = next((i for i, r in enumerate(rows) if r.ev.id == old.ev.id), None)
            if idx is None:
                self.cursor = min(self.cursor, len(rows) - 1)
            else:
                shift = idx - self.cursor
                self.cursor = idx
                if shift:
                    self.scroll_to(y=self.scroll_y + shift, animate=False, immediate=True)
        self.refresh()

    # -- layout and rendering ---------------------------------------------------------------
    def on_resize(self, event: events.Resize) -> None:
        self._width = event.size.width
        self._cols = layout_columns(max(20, event.size.width - 1))
        self._lines = {}
        self.virtual_size = Size(event.size.width, len(self._rows) + 1)

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        if y == 0:
            style = self._style("call-table--header")
            segs = []
            for n, (_, title, w) in enumerate(self._cols):
                segs.append(Segment(set_cell_size(title, w) + (" " if n < len(self._cols) - 1 else ""), style))
            return Strip(segs).adjust_cell_length(width, style)
        idx = int(self.scroll_y) + y - 1
        base = self._style("base")
        if idx >= len(self._rows):
            if idx == 0 and not self._rows:
                dim = self._style("call-table--dim")
                return Strip([Segment(" " + self.empty_text, dim)]).adjust_cell_length(width, base)
            return Strip.blank(width, base)
        row = self._rows[idx]
        cursor = idx == self.cursor
        key = (row.ev.id, cursor)
        line = self._lines.get(key)
        if line is not None and line.cell_length == width:
            return line
        if len(self._lines) > 4 * max(10, self.size.height):
            self._lines = {}  # bounded: only lines seen in the last few frames are worth keeping
        row_style = self._style("cursor-row") if cursor else base
        segs = []
        last = len(self._cols) - 1
        for n, (ci, _, w) in enumerate(self._cols):
            text = set_cell_size(row.cells[ci], w) + (" " if n < last else "")
            style = row_style + self._cell_style(ci, row)
            segs.append(Segment(text, style))
        line = self._lines[key] = Strip(segs).adjust_cell_length(width, row_style)
        return line

    def _cell_style(self, ci: int, row: CallRow) -> Style:
        key = COLUMNS[ci][0]
        if key == "status":
            s = row.ev.status
            if s >= 500 or s == 429 or (row.ev.error and s < 400):
                return self._style("call-table--error")
            if s >= 400:
                return self._style("call-table--warn")
            return self._style("call-table--ok")
        if key == "tier" and row.ev.tier in ("fast", "balanced", "smart"):
            return self._style(f"call-table--{row.ev.tier}")
        if key in ("time", "rule", "latency", "tokens"):
            return self._style("call-table--dim")
        return _PLAIN

    # -- cursor -----------------------------------------------------------------------------
    def validate_cursor(self, value: int) -> int:
        return max(0, min(value, len(self._rows) - 1)) if self._rows else 0

    def watch_cursor(self, value: int) -> None:
        body = max(1, self.size.height - 1)
        top = int(self.scroll_y)
        if value < top:
            self.scroll_to(y=value, animate=False, immediate=True)
        elif value >= top + body:
            self.scroll_to(y=value - body + 1, animate=False, immediate=True)

    def action_cursor(self, delta: int) -> None:
        self.cursor += delta

    def action_page(self, direction: int) -> None:
        self.cursor += direction * max(1, self.size.height - 2)

    def action_top(self) -> None:
        self.cursor = 0
        self.scroll_to(y=0, animate=False, immediate=True)

    def action_bottom(self) -> None:
        self.cursor = len(self._rows) - 1

    def action_select(self) -> None:
        row = self.current
        if row is not None:
            self.post_message(self.Selected(row))

    def on_click(self, event: events.Click) -> None:
        if event.y >= 1:
            idx = int(self.scroll_y) + event.y - 1
            if idx < len(self._rows):
                self.cursor = idx
                if event.chain >= 2:
                    self.action_select()
