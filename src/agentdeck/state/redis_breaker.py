"""One provider's circuit breaker across the cluster: a breaker one process opens is open on all.

Why: a provider that is down is down for every process. With a breaker per process, each
of N processes has to see its own ``failure_threshold`` failures in a row before it sends
to the fallback, so the cluster sends N times the failures to a provider known to be down.

How: the same state machine as :class:`~agentdeck.limits.breaker.CircuitBreaker` (it is
one), counting this process's consecutive failures. When it opens or closes here, the
process writes ``open_until`` (Redis time) to the provider's shared hash, without waiting.
Every slot request already reads that hash in the same script (no extra round trip), and
a process that sees a new ``open_until`` ahead of Redis's clock opens too, for the rest of
that time; one that sees it cleared closes. The alert is published by the process whose
calls failed, once: the others follow in memory only.

After ``open_for_s`` each process lets one probe through (a half-open breaker per
process, so the cluster sends at most one probe per process); the first probe that
succeeds closes the breaker everywhere, one that fails opens it everywhere again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from agentdeck.config import BreakerConfig
from agentdeck.limits.breaker import CLOSED, OPEN, CircuitBreaker

if TYPE_CHECKING:
    from agentdeck.state.redis_limits import RedisLimit


class SharedBreaker(CircuitBreaker):
    """``BreakerState`` of one provider shared through its ``RedisLimit``; see the module docstring."""

    __slots__ = ("_lim", "_seen", "_following", "writing")

    def __init__(self, lim: "RedisLimit", cfg: BreakerConfig, on_change: Callable[[str, str], None] | None) -> None:
        super().__init__(cfg, on_change=on_change)
        self._lim = lim
        self._seen = 0.0         # the last open_until this process read or wrote
        self._following = False  # applying another process's change: no alert, no write back
        # This process's writes not answered yet: a reply read before them is older than this process's own state.
        self.writing = 0

    def _move(self, new: str) -> None:
        old = self._state
        if self._following:
            self._state = new
            return
        super()._move(new)
        if old != new and new == OPEN:
            self._lim.share_breaker(self.cfg.open_for_s)
        elif old != new and new == CLOSED:
            self._lim.share_breaker(0.0)

    def written(self, open_until: float | None) -> None:
        """One of this process's writes was answered (``open_until`` as written; None if it failed)."""
        self.writing = max(0, self.writing - 1)
        if open_until is not None:
            self._seen = open_until

    def mirror(self, open_until: float, now: float) -> None:
        """Follow the shared state read at ``now`` (both Redis time): open while ``open_until`` is ahead."""
        if open_until == self._seen or self.writing:
            return
        self._seen = open_until
        left = open_until - now
        self._following = True
        try:
            if left > 0:
                self._opened_at = self._clock() - max(0.0, self.cfg.open_for_s - left)
                self._probe_at = None
                self._failures = max(self._failures, self.cfg.failure_threshold)
                self._move(OPEN)
            elif open_until == 0.0 and self._state != CLOSED:
                self._failures = 0
                self._probe_at = None
                self._move(CLOSED)
        finally:
            self._following = False
