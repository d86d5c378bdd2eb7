"""The few ASGI pieces the mock needs: types, a request that notices a disconnect, JSON replies.

Why its own module: the server and the stream writer both read the request and send bytes;
neither should import the other for it.
"""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable, MutableMapping

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]

JSON_CT = (b"content-type", b"application/json")


class Disconnected(Exception):
    """The client went away while we were waiting; stop work so in_flight stays honest."""


class Request:
    """Per-request helper: reads the body and waits while watching for a client disconnect."""

    __slots__ = ("receive", "_disc")

    def __init__(self, receive: Receive) -> None:
        self.receive = receive
        self._disc: asyncio.Task[None] | None = None

    async def body(self) -> bytes:
        msg = await self.receive()
        if msg["type"] == "http.disconnect":
            raise Disconnected
        body = msg.get("body", b"")
        if not msg.get("more_body"):
            return body
        chunks = [body]
        while True:
            msg = await self.receive()
            if msg["type"] == "http.disconnect":
                raise Disconnected
            chunks.append(msg.get("body", b""))
            if not msg.get("more_body"):
                return b"".join(chunks)

    async def _watch(self) -> None:
        while True:
            msg = await self.receive()
            if msg["type"] == "http.disconnect":
                return

    async def pause(self, seconds: float) -> None:
        """Sleep, but raise Disconnected as soon as the client disconnects."""
        if seconds <= 0:
            return
        if self._disc is None:
            self._disc = asyncio.ensure_future(self._watch())
        done, _ = await asyncio.wait((self._disc,), timeout=seconds)
        if done:
            raise Disconnected

    def close(self) -> None:
        if self._disc is not None and not self._disc.done():
            self._disc.cancel()


async def send_json(send: Send, status: int, body: bytes, headers: Headers | None = None) -> None:
    h = [JSON_CT, (b"content-length", str(len(body)).encode())]
    if headers:
        h.extend(headers)
    await send({"type": "http.response.start", "status": status, "headers": h})
    await send({"type": "http.response.body", "body": body})


async def send_json_status(send: Send, status: int, body: bytes, headers: Headers) -> int:
    await send_json(send, status, body, headers)
    return status
