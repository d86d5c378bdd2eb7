"""Pilot tests of the console's keys against scripted events: pause, filter, tabs, themes, help, details."""

from __future__ import annotations

import tempfile
from pathlib import Path

from tui_scripted import T0, ReplayEngine, make_request, make_tick, scripted_events
from textual.widgets import Input, TabbedContent

from agentdeck.tui.app import ConsoleApp
from agentdeck.tui.panes.routing import RoutingPane
from agentdeck.tui.screens import CallDetailScreen, ConfirmScreen, HelpScreen, StopScreen
from agentdeck.tui.widgets.call_table import CallTable

SIZE = (140, 45)
DB_DIR = Path(tempfile.mkdtemp(prefix="agentdeck-tui-keys-"))


def app_with(events: list) -> tuple[ConsoleApp, ReplayEngine]:
    eng = ReplayEngine(events)
    app = ConsoleApp(eng, db_path=DB_DIR / "agentdeck.db")
    app.clock = lambda: T0 + 125
    return app, eng


async def test_pause_freezes_the_table_and_shows_a_banner() -> None:
    app, eng = app_with([make_request(i) for i in range(10)])
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        table = app.query_one(CallTable)
        assert [r.ev.id for r in table.rows][:2] == ["req_000009", "req_000008"]
        pane = app.query_one(RoutingPane)
        banner = pane.query_one("#routing-summary")
        assert "PAUSED" not in str(banner.render())

        await pilot.press("p")
        assert app.paused and banner.has_class("-paused")
        eng.push([make_request(i) for i in range(10, 15)])
        app._pump()
        await pilot.pause()
        assert table.rows[0].ev.id == "req_000009", "a paused table must not move"
        assert "PAUSED" in str(banner.render()) and "5 new calls since" in str(banner.render())
        assert "PAUSED" in str(app.topbar.render())

        await pilot.press("p")
        await pilot.pause()
        assert not app.paused and not banner.has_class("-paused")
        assert "PAUSED" not in str(banner.render())
        assert table.rows[0].ev.id == "req_000014"


async def test_filter_narrows_the_table_and_escape_clears_it() -> None:
    app, _ = app_with([make_request(i) for i in range(40)])
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        table = app.query_one(CallTable)
        assert len(table.rows) == 40
        await pilot.press("slash")
        box = app.query_one("#filter", Input)
        assert box.has_focus
        await pilot.press(*"codex opus")
        await pilot.pause()
        assert table.rows and all(r.ev.key == "codex" and "opus" in r.ev.model for r in table.rows)
        await pilot.press("enter")
        assert table.has_focus, "enter keeps the filter and returns to the table"
        assert len(table.rows) < 40
        await pilot.press("escape")
        await pilot.pause()
        assert len(table.rows) == 40 and not box.display


async def test_bang_while_typing_a_filter_is_a_character_not_a_stop() -> None:
    app, eng = app_with([make_request(i) for i in range(3)])
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("slash", "a", "exclamation_mark")
        await pilot.pause()
        assert app.query_one("#filter", Input).value == "a!"
        assert not isinstance(app.screen, StopScreen)
        await pilot.press("escape", "exclamation_mark")
        await pilot.pause()
        assert isinstance(app.screen, StopScreen)


async def test_number_keys_switch_panes_and_every_pane_has_content() -> None:
    app, _ = app_with(scripted_events(30))
    async with app.run_test(size=SIZE) as pilot:
        tabs = app.query_one(TabbedContent)
        for key, pane in (("2", "providers"), ("3", "budget"), ("4", "diagnose"), ("5", "flaky"), ("1", "routing")):
            await pilot.press(key)
            await pilot.pause()
            assert tabs.active == pane
            content = app.query_one(f"#{pane}").children
            assert content, f"{pane} pane is empty"
        for pane in ("diagnose", "flaky"):
            widget = app.query_one(f"#{pane}").children[0]
            text = str(widget.render()) if "placeholder" in (widget.id or "") else ""
            assert "placeholder" not in (widget.id or "") or "How to use it now" in text


async def test_theme_switches_from_the_palette() -> None:
    app, _ = app_with([make_request(1)])
    async with app.run_test(size=SIZE) as pilot:
        assert app.theme == "dark"
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"switch theme: light")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await pilot.pause()
        assert app.theme == "light"
        assert app.current_theme.background == "#F7F8FA"


async def test_help_lists_every_contract_key() -> None:
    app, _ = app_with([])
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        keys = {k for _, k, _ in app.screen.rows}
        assert {"!", "?", "ctrl+p", "q", "p", "/", "enter / escape"} <= keys
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


async def test_enter_opens_details_and_d_sends_a_failed_call_to_diagnose() -> None:
    failed = make_request(3, status=400, error="Invalid request.")
    app, _ = app_with([make_request(1), make_request(2), failed])
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, CallDetailScreen) and app.screen.ev.id == failed.id
        await pilot.press("d")
        await pilot.pause()
        assert not isinstance(app.screen, CallDetailScreen)
        assert app.query_one(TabbedContent).active == "diagnose"
        pane = app.query_one("#diagnose").children[0]
        if pane.id != "diagnose-placeholder":  # the real wizard: it starts from the failed call's error
            from textual.widgets import TextArea

            assert "400" in pane.query_one(TextArea).text and "Invalid request." in pane.query_one(TextArea).text


async def test_quit_asks_while_traffic_flows() -> None:
    from tui_scripted import make_tick

    app, eng = app_with([make_tick(1)])
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert app.top.rps > 0
        await pilot.press("q")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("escape")
        await pilot.pause()
        assert app.is_running and not isinstance(app.screen, ConfirmScreen)
        await pilot.press("q", "enter")
        await pilot.pause()
    assert ("close", None) in eng.commands


async def test_filter_applies_to_the_frozen_rows_while_paused() -> None:
    app, eng = app_with([make_request(i) for i in range(20)])
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("p", "slash", *"opus", "enter")
        await pilot.pause()
        table = app.query_one(CallTable)
        assert table.rows and all("opus" in r.ev.model for r in table.rows)
        eng.push([make_request(i) for i in range(20, 30)])
        app._pump()
        await pilot.pause()
        assert max(int(r.ev.id[4:]) for r in table.rows) < 20, "paused: new calls stay out"
        await pilot.press("p")
        await pilot.pause()
        assert max(int(r.ev.id[4:]) for r in table.rows) >= 20 and all("opus" in r.ev.model for r in table.rows)


async def test_escape_leaves_a_text_field_so_pane_keys_work_again() -> None:
    app, _ = app_with([make_request(1, status=400, error="Invalid request.")])
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("enter", "d")
        await pilot.pause()
        tabs = app.query_one(TabbedContent)
        assert tabs.active == "diagnose"
        await pilot.press("escape", "1")
        await pilot.pause()
        assert tabs.active == "routing"
        await pilot.press("exclamation_mark")
        await pilot.pause()
        assert isinstance(app.screen, StopScreen)


async def test_palette_exports_the_table_and_stops_traffic(tmp_path: Path) -> None:
    app, eng = app_with([make_request(i) for i in range(12)])
    app.export_dir = tmp_path
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("ctrl+p", *"export calls", "enter")
        await pilot.pause(0.3)
        [csv_file] = list(tmp_path.glob("calls-*.csv"))
        lines = csv_file.read_text().splitlines()
        assert lines[0].startswith("id,ts,key") and len(lines) == 13 and lines[1].startswith("req_000011")

        await pilot.press("ctrl+p", *"emergency stop", "enter")
        await pilot.pause()
        assert isinstance(app.screen, StopScreen)
        await pilot.press("enter")
        await pilot.pause(0.3)
        assert eng.commands[0][0] == "stop" and app.top.stopped


async def test_sustained_heavy_traffic_embedded_suggests_a_gateway_process() -> None:
    """Embedded, 10 s above 100 req/s brings one tip about --gateway-process; a dip resets the count."""
    dip = [make_tick(i, rps=150.0) for i in range(6)] + [make_tick(6, rps=20.0)]
    app, eng = app_with(dip)
    async with app.run_test(size=(140, 45)) as pilot:
        await pilot.pause(0.5)
        assert not app.suggested_gateway_process, "6 heavy seconds, then a dip: no tip yet"
        eng.push([make_tick(i, rps=150.0) for i in range(7, 19)])
        await pilot.pause(0.5)
        assert app.suggested_gateway_process
        tips = [n for n in app._notifications if n.title == "heavy traffic"]
        assert len(tips) == 1 and "--gateway-process" in tips[0].message
        assert not tips[0].markup, "the tip names [tui] literally; as markup it would vanish"
        eng.push([make_tick(i, rps=150.0) for i in range(19, 40)])
        await pilot.pause(0.5)
        assert len([n for n in app._notifications if n.title == "heavy traffic"]) == 1, "the tip comes once"


async def test_no_heavy_traffic_tip_when_the_gateway_has_its_own_process() -> None:
    app, eng = app_with([make_tick(i, rps=500.0) for i in range(30)])
    eng.mode = "attached"
    async with app.run_test(size=(140, 45)) as pilot:
        await pilot.pause(0.5)
        assert not app.suggested_gateway_process
