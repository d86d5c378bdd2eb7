"""Upstream: one aiohttp session; attempts with retries, breaker and fallback inside one slot.

Why aiohttp: under 32+ concurrent keep-alive connections its pool is markedly cheaper per
call than httpx's (measured with `agentdeck bench --scenario clients`; see docs/performance.md).
Why the slot is taken here and held by the caller's ``async with``: a request holds one
in-flight slot from its first attempt to its last, retries and fallbacks included, and for
a stream until the last byte. Releasing per stage is how a fleet ends up with 21,000
calls in flight against a limit of 200.
Why ``RetryPolicy.next_delay`` decides every retry: the policy is the one place that knows
the whitelist, the budget of retries, the deadline and the provider's ``x-should-retry``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from typing import AsyncIterator, Awaitable, Callable, Mapping

import aiohttp

from agentdeck.config import Config, ProviderConfig
from agentdeck.limits import RetryPolicy
from agentdeck.state import LimitState
from agentdeck.wire import PROVIDER_WIRES, gemini

NOT_FORWARDED = frozenset({
    # the caller's gateway key: the provider gets the gateway's own key instead
    "authorization", "x-api-key", "x-goog-api-key", "api-key",
    # hop-by-hop and framing: the gateway's own connection to the provider decides these
    "host", "content-length", "transfer-encoding", "connection", "keep-alive", "te", "trailer", "upgrade",
    "proxy-authorization", "proxy-connection", "expect", "accept-encoding", "content-type", "cookie",
})
"""Client headers that stay in the gateway. Every other header (``anthropic-beta``, ``anthropic-version``,
``x-stainless-*``, a client's session ids) reaches the provider byte for byte: the gateway is not stricter
than the provider about what a client may say."""


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
    # No cookie jar: one session serves every caller, so a provider's Set-Cookie (a load balancer's, a
    # bot-check's) must not be kept and sent on other callers' calls (callers' own cookies stay with them).
    return aiohttp.ClientSession(connector=connector, timeout=timeout, auto_decompress=True,
                                 skip_auto_headers=("User-Agent",), raise_for_status=False,
                                 cookie_jar=aiohttp.DummyCookieJar())


class UnforwardableHeader(ValueError):
    """A client header whose bytes the gateway cannot pass on unchanged (not UTF-8)."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def forwarded_headers(headers: dict[str, str]) -> dict[str, str]:
    """The client headers that go upstream, from the request's headers as the pipeline decoded them
    (Latin-1, one character a byte). A non-ASCII value is re-read as UTF-8 so that aiohttp (which
    writes UTF-8) sends the very same bytes; one that is not UTF-8 could only be garbled on the way,
    so it raises ``UnforwardableHeader`` (the caller gets a 400 naming the header) instead."""
    out: dict[str, str] = {}
    for name, value in headers.items():
        if name not in NOT_FORWARDED and not name.startswith("x-agentdeck-"):
            if not value.isascii():
                try:
                    value = value.encode("latin-1").decode("utf-8")
                except UnicodeDecodeError:
                    raise UnforwardableHeader(name) from None
            out[name] = value
    return out


Reroute = Callable[[str, str], Awaitable["tuple[str, bytes, dict[str, str], str] | None"]]
"""(fallback, its protocol) -> the call's (path, body, headers, query) for it, or None to stay on the primary."""


class UpstreamStage:
    """Sends a call's body to its provider (or the fallback) and yields the final response."""

    def __init__(self, providers: Mapping[str, ProviderConfig], limiters: Mapping[str, LimitState],
                 retry: Mapping[str, RetryPolicy]) -> None:
        self._providers = providers
        self._limiters = limiters
        self._retry = retry
        self._auth = {name: {"content-type": "application/json", "accept-encoding": "identity",
                             **PROVIDER_WIRES[p.protocol].auth_headers(p.api_key)} for name, p in providers.items()}
        self.http: aiohttp.ClientSession | None = None
        self.crossing = frozenset(name for name, p in providers.items()
                                  if p.fallback is not None and providers[p.fallback].protocol != p.protocol)
        """Providers whose fallback speaks another protocol: a call reaches it only through a ``reroute``."""

    def protocol_of(self, provider: str) -> str:
        return self._providers[provider].protocol

    def _url(self, name: str, path: str) -> str:
        """A Gemini path names its model: only its fixed prefix goes through the provider's URL cache."""
        p = self._providers[name]
        if path.startswith(gemini.UPSTREAM_PREFIX):
            return p.url_for(gemini.UPSTREAM_PREFIX) + path[len(gemini.UPSTREAM_PREFIX):]
        return p.url_for(path)

    @contextlib.asynccontextmanager
    async def call(self, provider: str, path: str, body: bytes, extra: dict[str, str],
                   query: str = "", reroute: Reroute | None = None) -> AsyncIterator[Attempted]:
        """Hold a slot on ``provider`` and yield the final response after retries and fallback.

        The response (and the slot, and a fallback provider's slot) are released when the
        ``async with`` block ends, on every exit path. A fallback of another protocol is taken only
        with a ``reroute``, asked once for the request to send it (None: the call stays on ``provider``).
        """
        assert self.http is not None, "the gateway's startup opens the HTTP session"
        primary = provider
        policy = self._retry[primary]
        fallback = self._providers[primary].fallback
        fb_request: tuple[str, bytes, dict[str, str], str] | None = None
        if fallback is not None and primary in self.crossing:
            if reroute is None:
                fallback = None
        elif fallback is not None:
            fb_request = (path, body, extra, query)
        limiters = self._limiters
        started = time.monotonic()
        statuses: list[int] = []
        async with contextlib.AsyncExitStack() as stack:
            await stack.enter_async_context(limiters[primary].slot())
            fallback_slot_held = False
            retries = 0
            while True:
                name = primary
                if not limiters[primary].breaker.allow() and fallback is not None and limiters[fallback].breaker.allow():
                    if fb_request is None and reroute is not None:
                        fb_request = await reroute(fallback, self._providers[fallback].protocol)
                        reroute = None  # asked once
                    if fb_request is not None:
                        name = fallback
                        if not fallback_slot_held:
                            await stack.enter_async_context(limiters[fallback].slot())
                            fallback_slot_held = True
                if name == primary:
                    u_path, u_body, u_extra, u_query = path, body, extra, query
                else:
                    assert fb_request is not None
                    u_path, u_body, u_extra, u_query = fb_request
                lim = limiters[name]
                await lim.pace()
                headers = {**self._auth[name], **u_extra} if u_extra else self._auth[name]
                try:
                    url = self._url(name, u_path)
                    resp = await self.http.post(f"{url}?{u_query}" if u_query else url, data=u_body, headers=headers)
                except (aiohttp.ClientConnectionError, asyncio.TimeoutError, OSError) as e:
                    lim.breaker.record_failure()
                    delay = policy.next_delay(retries, exc=e, elapsed_s=time.monotonic() - started)
                    if delay is None:
                        raise UpstreamUnavailable(f"provider unreachable after {retries + 1} attempt(s) "
                                                  f"({name}: {type(e).__name__})", retries + 1) from None
                    retries += 1
                    await asyncio.sleep(delay)
                    continue
                status = resp.status
                statuses.append(status)
                resp_headers: Mapping[str, str] = resp.headers
                if status == 429 and self._providers[name].protocol == "gemini":
                    resp_headers = await _with_retry_delay(resp)
                lim.observe(status, resp_headers)
                if status >= 500 and status != 529:
                    lim.breaker.record_failure()
                elif status < 500:
                    lim.breaker.record_success()
                if status >= 400:
                    delay = policy.next_delay(retries, status=status, headers=resp_headers,
                                              elapsed_s=time.monotonic() - started)
                    if delay is not None:
                        resp.release()
                        retries += 1
                        await asyncio.sleep(delay)
                        continue
                stack.callback(resp.release)
                yield Attempted(resp, name, retries + 1, primary if name != primary else None, statuses)
                return


async def _with_retry_delay(resp: aiohttp.ClientResponse) -> Mapping[str, str]:
    """A Gemini 429's headers with its body's RetryInfo.retryDelay as ``retry-after``, so the limiter
    and the retry policy honour it like any provider's header. The body stays readable (aiohttp keeps it)."""
    if "retry-after" in resp.headers:
        return resp.headers
    try:
        delay = gemini.retry_delay_s(await resp.read())
    except (aiohttp.ClientError, asyncio.TimeoutError):
        return resp.headers
    if delay is None:
        return resp.headers
    return {**resp.headers, "retry-after": f"{delay:g}"}
