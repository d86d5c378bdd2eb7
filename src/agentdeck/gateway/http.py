"""Tiny ASGI helpers: read a bounded body, send a whole response, start a streamed one.

Why raw ASGI and not a framework: the request path is the product's speed, and a router
plus request objects per call is measurable overhead at 1,000+ requests/s.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable

import orjson

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class BodyTooLarge(Exception):
    pass


class ClientGone(Exception):
    pass


def header_map(scope: Scope) -> dict[str, str]:
    """Request headers as a dict of lower-case names (ASGI already lower-cases them)."""
    return {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}


async def read_body(receive: Receive, limit: int, content_length: str | None) -> bytes:
    if content_length is not None and content_length.isdigit() and int(content_length) > limit:
        raise BodyTooLarge()
    chunks: list[bytes] = []
    size = 0
    while True:
        msg = await receive()
        if msg["type"] == "http.disconnect":
            raise ClientGone()
        chunk = msg.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise BodyTooLarge()
            chunks.append(chunk)
        if not msg.get("more_body", False):
            return b"".join(chunks) if len(chunks) != 1 else chunks[0]


RawHeaders = list[tuple[bytes, bytes]]
"""Headers as ASGI carries them; the gateway passes a provider's headers on in this form, never decoded."""


def _raw_headers(headers: dict[str, str] | RawHeaders | None, content_type: bytes, length: int | None) -> RawHeaders:
    raw = [(b"content-type", content_type)]
    if length is not None:
        raw.append((b"content-length", b"%d" % length))
    if headers:
        if type(headers) is list:
            raw.extend(headers)
        else:
            raw.extend((k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items())  # type: ignore[union-attr]
    return raw


async def send_bytes(send: Send, status: int, body: bytes, headers: dict[str, str] | RawHeaders | None = None,
                     content_type: bytes = b"application/json") -> None:
    await send({"type": "http.response.start", "status": status, "headers": _raw_headers(headers, content_type, len(body))})
    await send({"type": "http.response.body", "body": body})


async def send_json(send: Send, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
    await send_bytes(send, status, orjson.dumps(obj), headers)


async def start_stream(send: Send, status: int, headers: dict[str, str] | RawHeaders | None = None,
                       content_type: bytes = b"text/event-stream") -> None:
    raw = _raw_headers(headers, content_type, None)
    raw.append((b"cache-control", b"no-cache"))
    await send({"type": "http.response.start", "status": status, "headers": raw})


async def send_chunk(send: Send, chunk: bytes, more: bool = True) -> None:
    await send({"type": "http.response.body", "body": chunk, "more_body": more})
