"""Which upstream failures the gateway retries, and how long it waits between attempts.

Why a whitelist: a retry of a 400 or 401 can never succeed and only burns the slot and
the provider's quota; a retry after bytes reached the client would duplicate output. So
only overload and transient server/connection failures are retried, with backoff that
honours the provider's own ``retry-after`` inside the request's deadline.
"""

from __future__ import annotations

import asyncio
import random
import sys
import time
from typing import Callable, Mapping

from agentdeck.config import RetryConfig
from agentdeck.limits.headers import lower_headers, retry_after_hint

RETRYABLE_STATUSES: frozenset[int] = frozenset({429, 529, 500, 502, 503, 504})
NEVER_RETRY_STATUSES: frozenset[int] = frozenset({400, 401, 403, 404, 413, 422})


def _transport_error_types() -> tuple[type[BaseException], ...]:
    """Connect errors and timeouts of the HTTP clients that are loaded (imported lazily by name
    so this module never pulls in a client the gateway does not use)."""
    types: list[type[BaseException]] = [ConnectionError, TimeoutError, asyncio.TimeoutError]
    httpx = sys.modules.get("httpx")
    if httpx is not None:
        types += [httpx.ConnectError, httpx.TimeoutException, httpx.RemoteProtocolError]
    aiohttp = sys.modules.get("aiohttp")
    if aiohttp is not None:
        types += [aiohttp.ClientConnectionError, aiohttp.ServerTimeoutError]
    return tuple(types)


class RetryPolicy:
    """Per-provider retry rules built from ``RetryConfig``.

    ``attempt`` counts retries already made: the wait before the first retry is
    ``delay(0, ...)``.
    """

    __slots__ = ("cfg", "max_retries", "deadline_s", "base_s", "max_s", "_rng", "_wall")

    def __init__(
        self,
        cfg: RetryConfig,
        *,
        rng: random.Random | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.cfg = cfg
        self.max_retries: int = cfg.max_retries
        self.deadline_s: float = cfg.deadline_s
        self.base_s: float = cfg.backoff_base_s
        self.max_s: float = cfg.backoff_max_s
        self._rng = rng or random.Random()
        self._wall = wall_clock

    @staticmethod
    def retryable_status(status: int) -> bool:
        """True for 429, 529, 500, 502, 503, 504; everything else is final."""
        return status in RETRYABLE_STATUSES

    @staticmethod
    def retryable_error(exc: BaseException) -> bool:
        """True for connect errors and timeouts (no response was received)."""
        return isinstance(exc, _transport_error_types())

    def delay(self, attempt: int, headers: Mapping[str, str] | None = None) -> float:
        """Seconds to wait before retry number ``attempt + 1``.

        The provider's hint (``retry-after-ms``, then ``retry-after`` seconds or HTTP date)
        wins when ``0 < wait <= 60``; otherwise exponential ``min(base * 2**attempt, max)``
        scaled by a jitter in [0.75, 1.0] so that callers cut at the same moment do not
        come back in lockstep.
        """
        hint = retry_after_hint(headers, self._wall())
        if hint is not None:
            return hint
        backoff = min(self.base_s * (2.0 ** max(0, attempt)), self.max_s)
        return backoff * (0.75 + 0.25 * self._rng.random())

    def next_delay(
        self,
        attempt: int,
        *,
        status: int | None = None,
        exc: BaseException | None = None,
        headers: Mapping[str, str] | None = None,
        elapsed_s: float = 0.0,
        bytes_sent: bool = False,
    ) -> float | None:
        """The whole decision in one call: the wait before the next attempt, or None to stop.

        Stops when bytes already reached the client, when the failure is not on the
        whitelist, when ``max_retries`` is used up, when the provider says
        ``x-should-retry: false``, or when the wait would end past the deadline.
        """
        if bytes_sent or attempt >= self.max_retries:
            return None
        if exc is not None:
            if not self.retryable_error(exc):
                return None
        elif status is None or not self.retryable_status(status):
            return None
        if headers:
            should = lower_headers(headers).get("x-should-retry")
            if should is not None and should.strip().lower() == "false":
                return None
        wait = self.delay(attempt, headers)
        if elapsed_s + wait >= self.deadline_s:
            return None
        return wait
