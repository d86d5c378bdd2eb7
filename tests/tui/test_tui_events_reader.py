"""The console's reader of /admin/events takes any SSE framing the spec allows.

A real HTTP server on loopback sends bus events framed with CRLF, CR and LF, `data:` with and
without the space, keep-alive comments, and a CRLF cut across two writes; `RemoteEngine` must
turn every one of them back into the event the gateway sent.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import uvicorn

from agentdeck.bus import Alert, event_from_dict
from agentdeck.tui.engine import RemoteEngine

TOKEN = "reader-admin-token-0123456789"


def alert(n: int) -> Alert:
    return Alert(severity="P2", kind="test", message=f"event {n}", ts=1000.0 + n)


def framed() -> list[bytes]:
    """Six events in six framings, cut into writes at awkward places (one mid-CRLF)."""
    blocks = [
        b"data: " + alert(0).to_json() + b"\n\n",
        b"data:" + alert(1).to_json() + b"\r\n\r\n",
        b": keep-alive\r\n\r\n",
        b"data: " + alert(2).to_json() + b"\r\r",
        b"event: alert\nid: 3\ndata: " + alert(3).to_json() + b"\n\n",
        b": ping\n\n" + b"data: " + alert(4).to_json() + b"\r\n\r",
        b"\ndata: " + alert(5).to_json() + b"\n\n",
    ]
    stream = b"".join(blocks)
    cuts = sorted({7, len(blocks[0]) + 3, stream.index(b"\r\n\r\n") + 1, stream.index(b"\r\n\r") + 3, len(stream) - 5})
    return [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)])]


class EventsApp:
    """Just /admin/events: the pieces above, one write each, then the connection stays open."""

    def __init__(self) -> None:
        self.served = asyncio.Event()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        assert scope["path"] == "/admin/events"
        assert (b"authorization", b"Bearer " + TOKEN.encode()) in scope["headers"]
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
        for piece in framed():
            await send({"type": "http.response.body", "body": piece, "more_body": True})
            await asyncio.sleep(0.02)  # separate writes, so the reader gets separate chunks
        self.served.set()
        while (await receive())["type"] != "http.disconnect":
            pass


async def test_remote_engine_reads_every_framing() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    app = EventsApp()
    server = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_level="warning"))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    engine = RemoteEngine(f"http://127.0.0.1:{port}", TOKEN)
    reading = asyncio.create_task(engine.run())
    try:
        await asyncio.wait_for(app.served.wait(), 10)
        got: list[Any] = []
        for _ in range(200):
            got += engine.drain()
            if len(got) >= 6:
                break
            await asyncio.sleep(0.01)
        assert [(type(e).__name__, e.message, e.ts) for e in got] == [("Alert", f"event {n}", 1000.0 + n) for n in range(6)]
        assert got[0] == event_from_dict(alert(0).to_dict())
        assert engine.connected and engine.dropped == 0
    finally:
        await engine.close()
        reading.cancel()
        server.should_exit = True
        await asyncio.wait_for(serving, 10)
        sock.close()
