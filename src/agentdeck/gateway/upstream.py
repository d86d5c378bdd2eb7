"""Talking to providers: one aiohttp session, attempts with retries and fallback inside one slot.

Why aiohttp: under 32+ concurrent keep-alive connections its pool is markedly cheaper per
call than httpx's (measured with `agentdeck bench`; see the README).
Why the slot is taken here and held by the caller's ``async with``: a request holds one
in-flight slot from its first attempt to its last, retries and fallbacks included, and for
a stream until the last byte. Releasing per stage is how the seed's system ended up with
21,000 calls in flight against a limit of 200.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, AsyncIterator

import aiohttp

from agentdeck.config import Config

if TYPE_CHECKING:
    from agentdeck.gateway.app import Gateway

_FORWARD_REQUEST_HEADERS = ("anthropic-version", "anthropic-beta", "openai-beta", "x-stainless-retry-count")


class UpstreamUnavailable(Exception):
    """Every attempt failed to connect or timed out."""

    def __init__(self, message: str, attempts: int) -> None:
        super().__init__(message)
        self.attempts = attempts


@dataclass(slots=True)
class Attempted:
    """The final upstream response of a call, and how it was reached."""

    resp: aiohttp.ClientResponse
    provider: str
    attempts: int
    fallback_from: str | None = None
    statuses: list[int] = field(default_factory=list)


def make_session(cfg: Config) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=30, ttl_dns_cache=300, enable_cleanup_closed=True)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=cfg.gateway.connect_timeout_s,
                                    sock_read=cfg.gateway.read_timeout_s)
    return aiohttp.ClientSession(connector=connector, timeout=timeout, auto_decompress=True,
                                 skip_auto_headers=("User-Agent",), raise_for_status=False)


def forwarded_headers(client_headers: dict[str, str]) -> dict[str, str]:
    return {h: client_headers[h] for h in _FORWARD_REQUEST_HEADERS if h in client_headers}


@contextlib.asynccontextmanager
async def upstream_call(
    gw: "Gateway",
    provider: str,
    path: str,
    body: bytes,
    client_headers: dict[str, str],
) -> AsyncIterator[Attempted]:
    """Hold a slot on ``provider`` and yield the final response after retries and fallback.

    The response (and the slot, and a fallback provider's slot) are released when the
    ``async with`` block ends, on every exit path.
    """
    primary = provider
    pcfg = gw.cfg.providers[primary]
    policy = gw.retry[primary]
    fallback = pcfg.fallback
    extra = forwarded_headers(client_headers)
    deadline = time.monotonic() + policy.deadline_s
    statuses: list[int] = []
    async with contextlib.AsyncExitStack() as stack:
        await stack.enter_async_context(gw.limiters[primary].slot())
        fallback_slot_held = False
        attempt = 0
        last_error = "no attempt made"
        while True:
            name = primary
            if not gw.limiters[primary].breaker.allow() and fallback is not None and gw.limiters[fallback].breaker.allow():
                name = fallback
                if not fallback_slot_held:
                    await stack.enter_async_context(gw.limiters[fallback].slot())
                    fallback_slot_held = True
            lim = gw.limiters[name]
            prov = gw.cfg.providers[name]
            await lim.pace()
            headers = {"content-type": "application/json", "accept-encoding": "identity", **extra,
                       **gw.wires[prov.protocol].auth_headers(prov.api_key)}
            attempt += 1
            try:
                resp = await gw.http.post(prov.base_url + path, data=body, headers=headers)
            except (aiohttp.ClientConnectionError, asyncio.TimeoutError, OSError) as e:
                lim.breaker.record_failure()
                last_error = f"{name}: {type(e).__name__}"
                delay = policy.delay(attempt - 1, None)
                if attempt <= policy.max_retries and time.monotonic() + delay < deadline:
                    await asyncio.sleep(delay)
                    continue
                raise UpstreamUnavailable(f"provider unreachable after {attempt} attempt(s) ({last_error})", attempt) from None
            status = resp.status
            statuses.append(status)
            lim.observe(status, resp.headers)
            if status >= 500 and status != 529:
                lim.breaker.record_failure()
            elif status < 500:
                lim.breaker.record_success()
            if policy.retryable_status(status) and attempt <= policy.max_retries:
                delay = policy.delay(attempt - 1, resp.headers)
                if time.monotonic() + delay < deadline:
                    resp.release()
                    await asyncio.sleep(delay)
                    continue
            stack.callback(resp.release)
            yield Attempted(resp, name, attempt, primary if name != primary else None, statuses)
            return
