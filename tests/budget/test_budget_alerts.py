"""AlertSink: posts to a real local webhook server, retries after a 500, dedupes, never leaks secrets."""

from __future__ import annotations

import asyncio
import io
from typing import Any, AsyncIterator

import pytest
from aiohttp import web
from budget_support import make_config
from deck_support import wait_for

from agentdeck.budget.alerts import AlertSink, secrets_of
from agentdeck.bus import Alert, Bus
from agentdeck.config import AlertsConfig


class Hook:
    """A Slack-style incoming webhook on loopback that fails the first ``fail_first`` posts with 500."""

    def __init__(self, fail_first: int) -> None:
        self.fail_first = fail_first
        self.hits = 0
        self.received: list[dict[str, Any]] = []
        self.url = ""

    async def handler(self, request: web.Request) -> web.Response:
        self.hits += 1
        body = await request.json()
        if self.hits <= self.fail_first:
            return web.Response(status=500, text="boom")
        self.received.append(body)
        return web.Response(text="ok")


@pytest.fixture
async def hook() -> AsyncIterator[Hook]:
    h = Hook(fail_first=1)
    app = web.Application()
    app.router.add_post("/hook", h.handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    h.url = f"http://127.0.0.1:{port}/hook"
    yield h
    await runner.cleanup()


async def test_posts_retries_after_500_and_dedupes(hook: Hook) -> None:
    bus = Bus()
    err = io.StringIO()
    sink = AlertSink(AlertsConfig(webhook_url=hook.url, webhook_retries=3, dedupe_window_s=60), bus,
                     stderr=True, stream=err, backoff_s=0.01)
    await sink.start()
    try:
        bus.publish(Alert(severity="P0", kind="rps-anomaly", message="key 'ci': 40 req/s, 12x", key="ci"))
        for _ in range(5):  # the loop keeps raising it: folded
            bus.publish(Alert(severity="P0", kind="rps-anomaly", message="key 'ci': 41 req/s, 12x", key="ci"))
        bus.publish(Alert(severity="P2", kind="budget-daily-50", message="daily budget: 50% used"))
        await wait_for(lambda: len(hook.received) == 2)
        await asyncio.sleep(0.05)
    finally:
        await sink.stop()
    assert hook.hits == 3  # one 500, then both delivered
    first = hook.received[0]
    assert first["text"].startswith("[P0] agentdeck rps-anomaly (ci): key 'ci': 40 req/s")
    assert first["attachments"][0]["color"] == "#d40e0d"
    assert hook.received[1]["text"].startswith("[P2] agentdeck budget-daily-50")
    assert sink.suppressed == 5 and sink.sent == 2 and sink.failed == 0
    lines = err.getvalue().splitlines()
    assert len(lines) == 2 and lines[0].startswith("agentdeck ALERT P0 rps-anomaly key=ci ")


async def test_gives_up_after_the_configured_retries(hook: Hook) -> None:
    hook.fail_first = 100
    bus = Bus()
    sink = AlertSink(AlertsConfig(webhook_url=hook.url, webhook_retries=2), bus, backoff_s=0.01)
    await sink.start()
    try:
        bus.publish(Alert(severity="P1", kind="cost-anomaly", message="spend 3x"))
        await wait_for(lambda: sink.failed == 1)
    finally:
        await sink.stop()
    assert hook.hits == 3 and sink.sent == 0


async def test_alerts_never_carry_secrets(hook: Hook, tmp_path: Any) -> None:
    cfg = make_config(tmp_path, keys=[{"name": "dev", "key": "devsecret-123456"}],
                      providers={"openai": {"protocol": "openai", "base_url": "https://api.openai.com",
                                            "api_key": "sk-proj-REALKEY0123456789"}})
    bus = Bus()
    err = io.StringIO()
    sink = AlertSink(AlertsConfig(webhook_url=hook.url, webhook_retries=1), bus, stderr=True, stream=err,
                     redact=secrets_of(cfg), backoff_s=0.01)
    await sink.start()
    try:
        bus.publish(Alert(severity="P1", kind="x", message="upstream said: bad key sk-proj-REALKEY0123456789 from devsecret-123456"))
        bus.publish(Alert(severity="P1", kind="y", message="header Authorization: Bearer abcdefghijklmnop; adk-s-AAAAAAAAAAAAAAAA"))
        await wait_for(lambda: len(hook.received) == 2)
    finally:
        await sink.stop()
    blob = repr(hook.received) + err.getvalue()
    for secret in ("REALKEY0123456789", "devsecret-123456", "abcdefghijklmnop", "adk-s-AAAA"):
        assert secret not in blob
    assert "[redacted]" in blob


async def test_stderr_only_without_webhook() -> None:
    bus = Bus()
    err = io.StringIO()
    sink = AlertSink(AlertsConfig(), bus, stderr=True, stream=err)
    await sink.start()
    bus.publish(Alert(severity="P0", kind="budget-daily-100", message="daily budget reached"))
    await wait_for(lambda: "budget-daily-100" in err.getvalue())
    await sink.stop()
