"""The emergency stop from the console, against a real gateway: the modal, and what callers see after."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import openai
import pytest
from deck_support import wait_for

from agentdeck.tui.app import ConsoleApp
from agentdeck.tui.engine import InProcessEngine
from agentdeck.tui.screens import ConfirmScreen, StopScreen

SIZE = (140, 45)


def key_of(gw: Any) -> str:
    return str(gw.cfg.keys[0].key)


def chat(gw: Any) -> Any:
    client = openai.OpenAI(base_url=gw.url + "/v1", api_key=key_of(gw), max_retries=0, timeout=10)
    return client.chat.completions.create(model="fast", max_tokens=20, messages=[{"role": "user", "content": "list files"}])



async def test_stop_modal_confirm_refuses_calls_and_resume_lets_them_through(make_gateway: Any) -> None:
    gw = make_gateway()
    await asyncio.to_thread(chat, gw)
    app = ConsoleApp(InProcessEngine(gw, owns_gateway=False), db_path=gw.cfg.gateway.data_path / "agentdeck.db")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(lambda: app.query_one("CallTable").rows)  # the call made before the console opened
        await pilot.press("exclamation_mark")
        await pilot.pause()
        assert isinstance(app.screen, StopScreen)
        assert "calls in flight" in str(app.screen.describe()) or "call in flight" in str(app.screen.describe())
        assert "dev" in app.screen.sessions, "the modal names the keys that will be cut off"
        await pilot.press("enter")
        await wait_for(lambda: gw.gateway.killswitch.stopped)
        assert not isinstance(app.screen, StopScreen)

        with pytest.raises(openai.PermissionDeniedError) as err:
            await asyncio.to_thread(chat, gw)
        assert err.value.status_code == 403
        assert err.value.response.headers["x-should-retry"] == "false"
        assert "agentdeck_stopped" in err.value.response.text
        await pilot.pause(0.3)
        assert app.top.stopped and "STOPPED" in str(app.topbar.render())

        await pilot.press("R")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("enter")
        await wait_for(lambda: not gw.gateway.killswitch.stopped)
        resp = await asyncio.to_thread(chat, gw)
        assert resp.choices[0].message.content
        await pilot.pause(0.3)
        assert not app.top.stopped and "LIVE" in str(app.topbar.render())


async def test_stop_modal_escape_changes_nothing(make_gateway: Any) -> None:
    gw = make_gateway()
    app = ConsoleApp(InProcessEngine(gw, owns_gateway=False), db_path=gw.cfg.gateway.data_path / "agentdeck.db")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3", "exclamation_mark")
        await pilot.pause()
        assert isinstance(app.screen, StopScreen)
        await pilot.press("escape")
        await pilot.pause(0.2)
        assert not isinstance(app.screen, StopScreen)
        assert not gw.gateway.killswitch.stopped
        r = httpx.post(gw.url + "/v1/chat/completions", headers={"authorization": f"Bearer {key_of(gw)}"},
                       json={"model": "fast", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]})
        assert r.status_code == 200
