"""Keys people already have in their fingers: ':' opens the command palette (k9s), j/k move and g/G jump in
the tables, and the Footer shows them; ':' typed in a text field stays a character."""

from __future__ import annotations

import tempfile
from pathlib import Path

from textual.command import CommandPalette
from textual.widgets import DataTable, Footer, Input
from tui_scripted import T0, ReplayEngine, make_request

from agentdeck.tui.app import ConsoleApp
from agentdeck.tui.widgets.call_table import CallTable

SIZE = (140, 45)
DB_DIR = Path(tempfile.mkdtemp(prefix="agentdeck-tui-vim-"))


def _app(n: int) -> ConsoleApp:
    app = ConsoleApp(ReplayEngine([make_request(i) for i in range(n)]), db_path=DB_DIR / "agentdeck.db")
    app.clock = lambda: T0 + 125
    return app


def _footer_text(app: ConsoleApp) -> str:
    return " ".join(str(w.render()) for w in app.query_one(Footer).query("*"))


async def test_colon_opens_the_palette_and_j_k_g_G_move_in_the_calls() -> None:
    app = _app(20)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        table = app.query_one(CallTable)
        assert table.has_focus and table.cursor == 0
        footer = _footer_text(app)
        assert "Move" in footer and "Top/Bottom" in footer and "Commands" in footer
        await pilot.press("j", "j", "j")
        assert table.cursor == 3
        await pilot.press("k")
        assert table.cursor == 2
        await pilot.press("G")
        assert table.cursor == len(table.rows) - 1
        await pilot.press("g")
        assert table.cursor == 0 and table.current is not None and table.current.ev.id == "req_000019"

        await pilot.press("colon")
        await pilot.pause()
        assert isinstance(app.screen, CommandPalette)
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, CommandPalette)

        await pilot.press("ctrl+p")  # Textual's own key still works beside ':'
        await pilot.pause()
        assert isinstance(app.screen, CommandPalette)
        await pilot.press("escape")


async def test_colon_in_the_filter_is_a_character() -> None:
    app = _app(5)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("slash")
        await pilot.pause()
        assert isinstance(app.focused, Input)
        await pilot.press(*"tier:fast")
        await pilot.pause()
        assert not isinstance(app.screen, CommandPalette)
        assert app.focused.value == "tier:fast"


async def test_j_k_move_in_the_budget_spenders_table() -> None:
    app = _app(5)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        await pilot.pause()
        spenders = app.query_one("#spenders", DataTable)
        for i in range(4):
            spenders.add_row(f"key-{i}", "$1.00", key=f"k{i}")
        spenders.focus()
        await pilot.pause()
        assert "Move" in _footer_text(app)
        await pilot.press("j", "j")
        assert spenders.cursor_row == 2
        await pilot.press("k")
        assert spenders.cursor_row == 1
        await pilot.press("G")
        assert spenders.cursor_row == 3
        await pilot.press("g")
        assert spenders.cursor_row == 0
