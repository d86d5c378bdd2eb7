"""A replay provider: serves recorded provider streams byte for byte and records what it was sent.

Why not the mock: the mock is ours and agreed with our assumptions; these transcripts are
written from the providers' documented wire formats (spaced JSON, CRLF framing, pings,
thinking and signature blocks, reasoning items, an error event mid-stream).
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

TRANSCRIPTS = Path(__file__).parent / "transcripts"


def transcript(name: str) -> bytes:
    return (TRANSCRIPTS / name).read_bytes()


def split_events(raw: bytes) -> list[bytes]:
    """The transcript cut after each blank line (LF or CRLF framed), as a provider flushes it."""
    sep = b"\r\n\r\n" if b"\r\n\r\n" in raw else b"\n\n"
    parts = raw.split(sep)
    out = [p + sep for p in parts[:-1]]
    if parts[-1]:
        out.append(parts[-1])
    return out


@dataclass
class Recorded:
    path: str
    headers: dict[str, bytes]
    body: bytes
    query: str = ""

    @property
    def json(self) -> Any:
        return orjson.loads(self.body)


@dataclass
class ReplayProvider:
    """``streams`` maps a model name to a transcript file; ``answers`` to (status, headers, body)."""

    streams: dict[str, str] = field(default_factory=dict)
    answers: dict[str, tuple[int, dict[str, str], bytes]] = field(default_factory=dict)
    hold_last: bool = False
    url: str = ""
    requests: list[Recorded] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    finished: threading.Event = field(default_factory=threading.Event)

    def start(self) -> "ReplayProvider":
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()

        async def boot() -> None:
            app = web.Application(client_max_size=32 * 1024 * 1024)
            app.router.add_post("/{tail:.*}", self._handle)
            self._runner = web.AppRunner(app, access_log=None)
            await self._runner.setup()
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            await site.start()
            port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            self.url = f"http://127.0.0.1:{port}"
            ready.set()

        def run() -> None:
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(boot())
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="replay-provider", daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        async def down() -> None:
            await self._runner.cleanup()

        asyncio.run_coroutine_threadsafe(down(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        headers = {k.lower(): v.encode("utf-8", "surrogateescape") for k, v in request.headers.items()}
        raw_headers = {k.decode("latin-1").lower(): v for k, v in request.raw_headers}
        headers.update(raw_headers)
        self.requests.append(Recorded(request.path, headers, body, request.query_string))
        model = orjson.loads(body).get("model", "")
        if model in self.answers:
            status, extra, answer = self.answers[model]
            return web.Response(status=status, body=answer, headers={"content-type": "application/json", **extra})
        if model not in self.streams:
            return web.Response(status=200, body=orjson.dumps({"id": "x", "type": "message", "role": "assistant",
                                                               "content": [{"type": "text", "text": "ok"}],
                                                               "model": model, "stop_reason": "end_turn",
                                                               "usage": {"input_tokens": 10, "output_tokens": 2}}),
                                content_type="application/json")
        resp = web.StreamResponse(status=200, headers={"content-type": "text/event-stream", "request-id": "req_replay"})
        await resp.prepare(request)
        events = split_events(transcript(self.streams[model]))
        for i, ev in enumerate(events):
            if i == len(events) - 1 and self.hold_last:
                await asyncio.get_running_loop().run_in_executor(None, self.release.wait, 10)
            # Cut each event in two writes so the gateway's decoder sees events split across chunks.
            half = len(ev) // 2
            await resp.write(ev[:half])
            await resp.write(ev[half:])
        self.finished.set()
        await resp.write_eof()
        return resp
