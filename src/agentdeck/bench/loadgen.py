"""A lean load generator for the benches: keep-alive connections that post one prepared request.

Why not aiohttp as the client: an aiohttp client spends more CPU per call than the gateway it
measures, so on a 2-core machine the client, not the gateway, set the pace (and `--workers 2`
could not show what a second process buys). This writes a prepared request and reads each answer
by its framing (content-length or chunked) on uvloop: a small fraction of the gateway's cost.
"""

from __future__ import annotations

import asyncio
import time
from urllib.parse import urlsplit

from agentdeck.bench.gateway import BENCH_KEY, Round


def request_bytes(url: str, body: bytes, key: str = BENCH_KEY) -> tuple[str, int, bytes]:
    """(host, port, the whole HTTP/1.1 request) for a POST of ``body`` to ``url``."""
    u = urlsplit(url)
    head = (f"POST {u.path} HTTP/1.1\r\nhost: {u.netloc}\r\ncontent-type: application/json\r\n"
            f"authorization: Bearer {key}\r\ncontent-length: {len(body)}\r\n\r\n")
    return u.hostname or "127.0.0.1", u.port or 80, head.encode() + body


async def read_response(reader: asyncio.StreamReader) -> int:
    """One response off a keep-alive connection (content-length or chunked); its status."""
    head = (await reader.readuntil(b"\r\n\r\n")).lower()
    i = head.find(b"\r\ncontent-length:")
    if i >= 0:
        await reader.readexactly(int(head[i + 17:head.index(b"\r\n", i + 2)]))
    elif b"transfer-encoding: chunked" in head:
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                break
            await reader.readexactly(size + 2)
    return int(head[9:12])


async def _load_async(url: str, body: bytes, concurrency: int, seconds: float) -> Round:
    host, port, req = request_bytes(url, body)
    lat: list[float] = []
    errors = n = 0
    end = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal errors, n
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while time.perf_counter() < end:
                t = time.perf_counter()
                writer.write(req)
                errors += await read_response(reader) != 200
                lat.append((time.perf_counter() - t) * 1000)
                n += 1
        finally:
            writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return Round(url, n, errors, time.perf_counter() - t0, lat)


def load(url: str, body: bytes, concurrency: int, seconds: float) -> Round:
    """``concurrency`` keep-alive connections posting ``body`` for ``seconds`` (an aiohttp client spent
    about 850 us per streamed call against the gateway's 500 us, measured here)."""
    try:
        import uvloop

        factory = uvloop.new_event_loop
    except ImportError:  # uvloop comes with uvicorn[standard] where it exists; plain asyncio elsewhere
        factory = asyncio.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(_load_async(url, body, concurrency, seconds))
