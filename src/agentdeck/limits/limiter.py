"""One provider's limiter: a FIFO in-flight slot pool, a requests/s token bucket, and the
AIMD controller that moves both.

Why one slot per request (not per attempt or per stage): the seed's outage had 21,000 tasks
in flight against a limit of 200 because slots were given back between stages. Here a
request takes its slot before its first upstream attempt and returns it after its last,
on every exit path, so in-flight calls can never exceed the current limit.

Why no polling anywhere: waiting callers park on a future in a deque; a released slot is
handed straight to the oldest waiter, a raised limit wakes waiters in the same call that
raised it, and the token bucket keeps one timer armed only while someone waits for a
token. An idle gateway schedules nothing (except a single recovery timer after a cut).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from contextvars import ContextVar
from types import EllipsisType
from typing import Any, Callable, Mapping

from agentdeck.bus import Alert, Bus, LimitChanged, ProviderThrottled
from agentdeck.config import BreakerConfig, LimitsConfig
from agentdeck.limits.aimd import AimdController
from agentdeck.limits.breaker import CircuitBreaker
from agentdeck.limits.headers import parse_rate_limit_headers, retry_hint_headers

_EPS = 1e-9
_MAX_RETRY_AFTER_S = 60.0
_MAX_HEADER_HOLD_S = 60.0
#: Share of the advertised request limit below which the limiter starts spacing attempts out.
HEADER_LOW_WATER = 0.05

# (limiter, time the current attempt was paced) for the task running it: lets observe() tell
# a 429 for an attempt sent before the last cut (old news) from one sent after it.
_ATTEMPT: ContextVar[tuple[object, float] | None] = ContextVar("agentdeck_limits_attempt", default=None)


class Throttled(Exception):
    """No in-flight slot within ``max_queue_wait_s``: the caller should answer 429.

    ``retry_after_s`` is an estimate of when the queue ahead will have drained, clamped to
    (0, 60] because the official SDKs ignore longer hints.
    """

    def __init__(self, retry_after_s: float, provider: str = "") -> None:
        self.retry_after_s: float = min(_MAX_RETRY_AFTER_S, max(0.001, float(retry_after_s)))
        self.provider = provider
        super().__init__(f"provider {provider or '?'} is at its in-flight limit; retry after {self.retry_after_s:.1f}s")

    @property
    def retry_after_ms(self) -> int:
        return int(math.ceil(self.retry_after_s * 1000.0))

    def headers(self) -> dict[str, str]:
        """The ``retry-after-ms`` and ``retry-after`` headers for the 429 answer."""
        return retry_hint_headers(self.retry_after_s)


class _Slot:
    """The async context manager ``ProviderLimiter.slot()`` returns (a class, not a generator,
    because it sits on the hot path)."""

    __slots__ = ("_lim", "_held")

    def __init__(self, lim: "ProviderLimiter") -> None:
        self._lim = lim
        self._held = False

    async def __aenter__(self) -> None:
        lim = self._lim
        if not lim._enabled or (lim._in_flight < lim._slots and not lim._queued):
            lim._in_flight += 1
            lim._acquired_total += 1
        else:
            await lim._wait_for_slot()
        self._held = True

    async def __aexit__(self, et: object, ev: object, tb: object) -> bool:
        if self._held:
            self._held = False
            self._lim._release()
        return False


class ProviderLimiter:
    """Slots, pacing, AIMD and the circuit breaker of one provider.

    Lives on one event loop (the gateway's): its waiters and timers belong to that loop.
    ``breaker`` is the provider's ``BreakerConfig`` (defaults when omitted); ``clock`` must
    be the loop's clock or agree with it (``time.monotonic`` for a normal loop,
    ``loop.time`` for a ``VirtualTimeLoop``), because waits are scheduled on the loop.
    """

    def __init__(
        self,
        name: str,
        cfg: LimitsConfig,
        bus: Bus,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        breaker: BreakerConfig | None = None,
        fallback: "str | None | EllipsisType" = ...,
    ) -> None:
        self.name = name
        # The provider calls go to while the breaker is open (None: none configured, ...: not told).
        self.fallback = fallback
        self.cfg = cfg
        self.bus = bus
        self._clock = clock
        self._wall = wall_clock
        self._enabled = cfg.enabled
        now = clock()
        self.aimd = AimdController(cfg, now)
        self._rps: float = self.aimd.rps
        self._slots: int = self.aimd.slots
        self.breaker = CircuitBreaker(breaker or BreakerConfig(), clock=clock, on_change=self._breaker_changed)
        # slot pool
        self._in_flight = 0
        self._queued = 0
        self._slot_waiters: deque[tuple[float, int, asyncio.Future[float | None]]] = deque()
        self._acquired_total = 0
        self._expiry_timer: asyncio.TimerHandle | None = None
        # token bucket
        self._cap = max(1.0, self._rps)
        self._tokens = 1.0  # start with no saved-up burst: a fresh gateway ramps at the rate
        self._tok_at = now
        self._pace_waiters: deque[asyncio.Future[None]] = deque()
        self._pace_queued = 0
        self._pace_timer: asyncio.TimerHandle | None = None
        # provider-header pacing: no attempt before _hold_until; while _hdr_until is ahead,
        # successive attempts are spaced _hdr_interval apart
        self._hold_until = -math.inf
        self._hdr_interval = 0.0
        self._hdr_until = -math.inf
        # AIMD bookkeeping
        self._recovery_timer: asyncio.TimerHandle | None = None
        self._last_throttled_pub = -math.inf
        # counters
        self.rate_limited_total = 0
        self.throttled_total = 0
        self.advertised: dict[str, Any] = {}

    # -- read-only views ---------------------------------------------------------------
    @property
    def rps_limit(self) -> float:
        return self._rps

    @property
    def slots_limit(self) -> int:
        return self._slots

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @property
    def queued(self) -> int:
        return self._queued

    @property
    def enabled(self) -> bool:
        return self._enabled

    def snapshot(self) -> dict[str, Any]:
        """What /admin/status and /metrics show for this provider."""
        return {
            "rps_limit": self._rps,
            "slots_limit": self._slots,
            "in_flight": self._in_flight,
            "queued": self._queued,
            "pace_queued": self._pace_queued,
            "rate_limited_total": self.rate_limited_total,
            "throttled_total": self.throttled_total,
            "advertised": dict(self.advertised),
            "header_paced": self._clock() < max(self._hold_until, self._hdr_until),
            "breaker": self.breaker.state,
            "enabled": self._enabled,
        }

    # -- in-flight slots ---------------------------------------------------------------
    def slot(self) -> _Slot:
        """``async with limiter.slot():`` around a request's whole upstream life (retries and
        fallbacks included). FIFO; raises ``Throttled`` after ``max_queue_wait_s``."""
        return _Slot(self)

    async def _wait_for_slot(self) -> None:
        wait_s = self.cfg.max_queue_wait_s
        if wait_s <= 0:
            self.throttled_total += 1
            raise Throttled(min(_MAX_RETRY_AFTER_S, max(1.0, 1.0 / max(self._rps, 0.001))), self.name)
        loop = asyncio.get_running_loop()
        # result None = a slot was handed over; a float = no slot in time, retry after that long
        fut: asyncio.Future[float | None] = loop.create_future()
        # every waiter waits the same max_queue_wait_s, so deadlines rise along the FIFO
        # queue and one timer for the head serves the whole queue (no timer per waiter)
        self._slot_waiters.append((self._clock() + wait_s, self._acquired_total, fut))
        self._queued += 1
        if self._in_flight < self._slots:
            self._grant_slots()
        if self._expiry_timer is None and not fut.done():
            self._expiry_timer = loop.call_later(wait_s, self._expire_waiters)
        try:
            retry_after = await fut
        except asyncio.CancelledError:
            if fut.cancelled():
                self._queued -= 1  # left the queue without a slot; _grant_slots skips it
            elif fut.result() is None:
                self._release()  # a slot was handed over just as we were cancelled: give it back
            raise
        if retry_after is not None:
            self.throttled_total += 1
            raise Throttled(retry_after, self.name)

    def _expire_waiters(self) -> None:
        """Tell every waiter whose deadline has passed that it gets no slot, then re-arm for
        the next live waiter's deadline.

        Each one's ``retry_after`` is where it would stand in line if it came back: the slots
        granted during its wait give the real drain rate (whatever binds, slots or rps), and
        the waiters still queued plus those expiring ahead of it are the line.
        """
        self._expiry_timer = None
        now = self._clock()
        wait_s = max(self.cfg.max_queue_wait_s, 1e-3)
        w = self._slot_waiters
        expiring = 0
        while w:
            deadline, acquired_then, fut = w[0]
            if fut.done():
                w.popleft()
                continue
            if deadline > now + _EPS:
                break
            w.popleft()
            self._queued -= 1
            expiring += 1
            rate = (self._acquired_total - acquired_then) / wait_s
            ahead = self._queued + expiring
            retry_after = ahead / rate if rate > 0 else _MAX_RETRY_AFTER_S
            fut.set_result(min(_MAX_RETRY_AFTER_S, max(1.0, retry_after)))
        if w:
            self._expiry_timer = asyncio.get_running_loop().call_later(w[0][0] - now, self._expire_waiters)

    def _grant_slots(self) -> None:
        """Hand free slots to the oldest waiters (the slot changes owner here, so nobody can
        overtake a waiter between its wake-up and its first step)."""
        w = self._slot_waiters
        while w and self._in_flight < self._slots:
            fut = w.popleft()[2]
            if fut.done():
                continue
            fut.set_result(None)
            self._in_flight += 1
            self._acquired_total += 1
            self._queued -= 1

    def _release(self) -> None:
        self._in_flight -= 1
        if self._queued:
            self._grant_slots()

    # -- requests/s pacing ---------------------------------------------------------------
    async def pace(self) -> None:
        """Take one requests/s token before an upstream attempt; wait (FIFO) when the bucket is
        empty or the provider's headers said its remainder is nearly spent."""
        now = self._clock()
        if self._enabled:
            if not self._pace_queued and now >= self._hold_until - _EPS:
                tokens = self._tokens + (now - self._tok_at) * self._rps
                if tokens > self._cap:
                    tokens = self._cap
                self._tok_at = now
                if tokens >= 1.0 - _EPS:
                    self._tokens = tokens - 1.0
                    if self._hdr_interval and now < self._hdr_until:
                        self._hold_until = now + self._hdr_interval
                else:
                    self._tokens = tokens
                    await self._wait_token()
                    now = self._clock()
            else:
                await self._wait_token()
                now = self._clock()
        _ATTEMPT.set((self, now))

    async def _wait_token(self) -> None:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        self._pace_waiters.append(fut)
        self._pace_queued += 1
        if self._pace_timer is None:
            self._arm_pace(loop)
        try:
            await fut
        except asyncio.CancelledError:
            if fut.cancelled():
                self._pace_queued -= 1
            else:
                self._tokens = min(self._cap, self._tokens + 1.0)  # granted but never used
            raise

    def _refill(self, now: float) -> None:
        tokens = self._tokens + (now - self._tok_at) * self._rps
        self._tokens = tokens if tokens < self._cap else self._cap
        self._tok_at = now

    def _arm_pace(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Arm the one timer that hands out the next token to the head of the pace queue."""
        if self._pace_timer is not None:
            self._pace_timer.cancel()
            self._pace_timer = None
        if not self._pace_queued:
            return
        if loop is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return
        now = self._clock()
        self._refill(now)
        delay = 0.0
        if self._tokens < 1.0 - _EPS:
            delay = (1.0 - self._tokens) / max(self._rps, 1e-6)
        if self._hold_until > now:
            delay = max(delay, self._hold_until - now)
        self._pace_timer = loop.call_later(max(delay, 0.0), self._pace_tick)

    def _pace_tick(self) -> None:
        self._pace_timer = None
        now = self._clock()
        self._refill(now)
        w = self._pace_waiters
        while w and self._tokens >= 1.0 - _EPS and now >= self._hold_until - _EPS:
            fut = w.popleft()
            if fut.done():
                continue
            fut.set_result(None)
            self._pace_queued -= 1
            self._tokens -= 1.0
            if self._hdr_interval and now < self._hdr_until:
                self._hold_until = now + self._hdr_interval
        while w and w[0].done():
            w.popleft()
        if self._pace_queued:
            self._arm_pace()

    # -- feedback from the provider ---------------------------------------------------------
    def observe(self, status: int, headers: Mapping[str, str] | None = None) -> None:
        """Feed the outcome of one upstream attempt: 429/529 is congestion (one cut per
        event), anything else may bring the additive increase; rate-limit headers update
        ``advertised`` and the pacing. Does not touch the breaker (see ``breaker``)."""
        now = self._clock()
        if status == 429 or status == 529:
            self.rate_limited_total += 1
            att = _ATTEMPT.get()
            sent_at = att[1] if att is not None and att[0] is self else None
            if now - self._last_throttled_pub >= self.cfg.congestion_window_s:
                self._last_throttled_pub = now
                self.bus.publish(ProviderThrottled(provider=self.name, status=status))
            if self.aimd.congestion(now, sent_at):
                # the provider is over its limit now: a saved-up burst is the last thing to send
                self._refill(now)
                if self._tokens > 0.0:
                    self._tokens = 0.0
                self._apply("congestion", now)
                self._arm_recovery(self.cfg.increase_every_s)
        elif now + _EPS >= self.aimd.increase_due_at():
            if self.aimd.increase(now):
                self._apply("recovery", now)
        if headers:
            self._observe_headers(headers, now)

    def _apply(self, reason: str, now: float) -> None:
        """Put the controller's new limits into force now and tell the bus."""
        new_rps, new_slots = self.aimd.rps, self.aimd.slots
        if new_rps == self._rps and new_slots == self._slots:
            return
        self._refill(now)
        self._rps = new_rps
        self._cap = max(1.0, new_rps)
        if self._tokens > self._cap:
            self._tokens = 1.0  # start with no saved-up burst: a fresh gateway ramps at the rate
        raised_slots = new_slots > self._slots
        self._slots = new_slots
        if raised_slots and self._queued:
            self._grant_slots()
        if self._pace_timer is not None:
            self._arm_pace()
        self.bus.publish(LimitChanged(provider=self.name, rps_limit=new_rps, slots_limit=new_slots, reason=reason))

    def _arm_recovery(self, delay: float) -> None:
        """One timer so that a provider left idle after a cut still climbs back to its
        configured limits; it is re-armed only while below them."""
        if self._recovery_timer is not None:
            self._recovery_timer.cancel()
            self._recovery_timer = None
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._recovery_timer = loop.call_later(max(delay, 0.0), self._recovery_due)

    def _recovery_due(self) -> None:
        self._recovery_timer = None
        now = self._clock()
        due = self.aimd.increase_due_at()
        if now + _EPS < due:
            self._arm_recovery(due - now)
            return
        top_rps, top_slots = self.aimd.start_rps, self.aimd.start_slots
        if self.aimd.increase(now, top_rps, top_slots):
            self._apply("recovery", now)
        if self._rps < top_rps or self._slots < top_slots:
            self._arm_recovery(self.cfg.increase_every_s)

    def _observe_headers(self, headers: Mapping[str, str], now: float) -> None:
        wall = self._wall()
        info = parse_rate_limit_headers(headers, wall)
        if info is None:
            return
        info["updated_at"] = wall
        self.advertised = info
        remaining = info["remaining_requests"]
        reset_s = info["reset_requests_s"]
        if remaining is None or reset_s is None:
            return
        reset_s = min(reset_s, _MAX_HEADER_HOLD_S)
        limit = info["limit_requests"]
        low_water = max(1.0, (limit or 0) * HEADER_LOW_WATER)
        before = self._hold_until
        if remaining <= 0:
            # spent: nothing more until the provider's reset
            self._hold_until = max(self._hold_until, now + reset_s)
            self._hdr_interval = 0.0
            self._hdr_until = now + reset_s
        elif remaining <= low_water:
            # nearly spent: spread what is left evenly until the reset
            self._hdr_interval = reset_s / remaining
            self._hdr_until = now + reset_s
        else:
            self._hdr_interval = 0.0
            self._hdr_until = -math.inf
            if self._hold_until > now:
                self._hold_until = now
        if self._hold_until != before and self._pace_queued:
            self._arm_pace()

    # -- breaker ---------------------------------------------------------------------------
    def _breaker_changed(self, old: str, new: str) -> None:
        if new == "open":
            self.bus.publish(Alert(severity="P1", kind="breaker_open", message=self.breaker_open_text()))
        elif new == "closed":
            self.bus.publish(Alert(severity="P2", kind="breaker_closed", message=f"provider {self.name}: circuit breaker closed"))

    def breaker_open_text(self) -> str:
        """The breaker_open alert: says where traffic goes, and never names a fallback that is not configured."""
        head = f"provider {self.name}: circuit breaker open after repeated failures"
        span = f"{self.breaker.cfg.open_for_s:g}s"
        if isinstance(self.fallback, str):
            return f"{head}; traffic goes to its fallback {self.fallback} for {span}"
        if self.fallback is None:
            return f"{head}; no fallback is configured, so calls still go to {self.name} (expect errors) for {span}"
        return (f"{head} for {span}; calls go to its fallback if one is configured "
                f"([providers.{self.name}] fallback), otherwise still to {self.name}")

    def close(self) -> None:
        """Cancel this limiter's timers (gateway shutdown, tests)."""
        for t in (self._pace_timer, self._recovery_timer, self._expiry_timer):
            if t is not None:
                t.cancel()
        self._pace_timer = None
        self._recovery_timer = None
        self._expiry_timer = None
