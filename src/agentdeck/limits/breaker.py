"""A circuit breaker per provider.

Why: a provider that keeps failing with 5xx or connection errors should stop receiving
traffic for a while, so requests fall back to another provider at once instead of each
burning its retries and deadline on a dead endpoint. After ``open_for_s`` exactly one
probe is let through (half-open); its outcome closes or reopens the breaker.
429 is not a failure here: overload is the AIMD controller's job, not the breaker's.
"""

from __future__ import annotations

import time
from typing import Callable

from agentdeck.config import BreakerConfig

CLOSED = "closed"
OPEN = "open"
HALF_OPEN = "half_open"


class CircuitBreaker:
    """Consecutive-failure breaker with a single half-open probe."""

    __slots__ = ("cfg", "_clock", "_state", "_failures", "_opened_at", "_probe_at", "on_change", "opened_total")

    def __init__(
        self,
        cfg: BreakerConfig,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[str, str], None] | None = None,
    ) -> None:
        self.cfg = cfg
        self._clock = clock
        self._state = CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._probe_at: float | None = None
        self.on_change = on_change
        self.opened_total = 0

    @property
    def state(self) -> str:
        """``closed`` | ``open`` | ``half_open`` (an open breaker whose wait is over reports half_open)."""
        if self._state == OPEN and self._clock() - self._opened_at >= self.cfg.open_for_s:
            return HALF_OPEN
        return self._state

    @property
    def consecutive_failures(self) -> int:
        return self._failures

    def _move(self, new: str) -> None:
        old = self._state
        self._state = new
        if old != new and self.on_change is not None:
            self.on_change(old, new)

    def allow(self) -> bool:
        """May a request go to this provider now? Closed: yes. Open: no, until ``open_for_s``
        has passed; then exactly one probe (a probe that never reports back is replaced after
        another ``open_for_s``)."""
        st = self._state
        if st == CLOSED:
            return True
        now = self._clock()
        if st == OPEN:
            if now - self._opened_at < self.cfg.open_for_s:
                return False
            self._move(HALF_OPEN)
            self._probe_at = now
            return True
        # half-open: one probe at a time
        if self._probe_at is not None and now - self._probe_at < self.cfg.open_for_s:
            return False
        self._probe_at = now
        return True

    def record_success(self) -> None:
        """A call completed (any answer that is not a server failure): close, forget failures."""
        self._failures = 0
        self._probe_at = None
        if self._state != CLOSED:
            self._move(CLOSED)

    def record_failure(self) -> None:
        """A 5xx, connect error or timeout. Opens after ``failure_threshold`` in a row, or at
        once when the half-open probe fails."""
        self._failures += 1
        if self._state == HALF_OPEN or (self._state == CLOSED and self._failures >= self.cfg.failure_threshold):
            self._opened_at = self._clock()
            self._probe_at = None
            self.opened_total += 1
            self._move(OPEN)
