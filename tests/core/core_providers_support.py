"""A loopback HTTP server that records the path of every request it gets (for the base_url tests)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import AsyncIterator

import pytest
from aiohttp import web


@dataclass
class PathRecorder:
    """The running server's origin ("http://127.0.0.1:PORT") and the paths it was asked for, in order."""

    origin: str = ""
    paths: list[str] = field(default_factory=list)


@pytest.fixture
async def recorder() -> AsyncIterator[PathRecorder]:
    rec = PathRecorder()

    async def handle(request: web.Request) -> web.Response:
        rec.paths.append(request.raw_path)
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    rec.origin = f"http://127.0.0.1:{port}"
    try:
        yield rec
    finally:
        await runner.cleanup()
