"""The bus itself.

``publish()`` is called on the request path, so it does a deque append per subscriber and
nothing else: it never awaits, never blocks, and a slow subscriber can only lose (and count)
its own events, never slow the gateway. Subscribers on another thread (the console) drain
their deque on a timer; async subscribers on the gateway's loop await ``get()``.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from enum import Enum
from typing import Callable

from agentdeck.bus.events import Event


class Policy(str, Enum):
    LOSSLESS = "lossless"  # keep everything up to the bound, then refuse new events and count them
    COALESCE = "coalesce"  # keep the newest: drop the oldest when full and count them


class Subscription:
    """One subscriber's bounded queue."""

    __slots__ = ("name", "maxlen", "policy", "types", "dropped", "_q", "_waiter", "_loop", "_thread", "_bus")

    def __init__(self, bus: "Bus", name: str, maxlen: int, policy: Policy, types: frozenset[str] | None) -> None:
        self._bus = bus
        self.name = name
        self.maxlen = maxlen
        self.policy = policy
        self.types = types
        self.dropped = 0
        self._q: deque[Event] = deque()
        self._waiter: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.get_ident()

    def _offer(self, ev: Event) -> None:
        if self.types is not None and ev.type not in self.types:
            return
        q = self._q
        if len(q) >= self.maxlen:
            self.dropped += 1
            if self.policy is Policy.LOSSLESS:
                return
            q.popleft()
        q.append(ev)
        w = self._waiter
        if w is not None and not w.is_set():
            if threading.get_ident() == self._thread:
                w.set()
            elif self._loop is not None:
                self._loop.call_soon_threadsafe(w.set)

    def drain(self, limit: int | None = None) -> list[Event]:
        """Take what is queued (up to ``limit``), oldest first. Safe from any thread."""
        q = self._q
        n = len(q) if limit is None else min(limit, len(q))
        out = []
        for _ in range(n):
            try:
                out.append(q.popleft())
            except IndexError:
                break
        return out

    def __len__(self) -> int:
        return len(self._q)

    async def get_batch(self, timeout: float | None = None) -> list[Event]:
        """Wait until something is queued (or the timeout passes), then take all of it."""
        if not self._q:
            if self._waiter is None:
                self._waiter = asyncio.Event()
                self._loop = asyncio.get_running_loop()
                self._thread = threading.get_ident()
            self._waiter.clear()
            if not self._q:
                try:
                    await asyncio.wait_for(self._waiter.wait(), timeout)
                except asyncio.TimeoutError:
                    pass
        return self.drain()

    def close(self) -> None:
        self._bus.unsubscribe(self)


class Bus:
    """Fan-out of events to subscribers. One per gateway."""

    def __init__(self) -> None:
        self._subs: tuple[Subscription, ...] = ()
        self._lock = threading.Lock()
        self.published = 0
        self._taps: tuple[Callable[[Event], None], ...] = ()

    def subscribe(
        self,
        name: str,
        *,
        maxlen: int = 10_000,
        policy: Policy = Policy.LOSSLESS,
        types: set[str] | frozenset[str] | None = None,
    ) -> Subscription:
        sub = Subscription(self, name, maxlen, policy, frozenset(types) if types else None)
        with self._lock:
            self._subs = self._subs + (sub,)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            self._subs = tuple(s for s in self._subs if s is not sub)

    def publish(self, ev: Event) -> None:
        """Hand ``ev`` to every subscriber. Never blocks; never raises."""
        self.published += 1
        for sub in self._subs:
            sub._offer(ev)

    @property
    def dropped(self) -> int:
        return sum(s.dropped for s in self._subs)

    def subscriptions(self) -> tuple[Subscription, ...]:
        return self._subs
