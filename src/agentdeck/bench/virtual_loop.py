"""An asyncio event loop whose clock is simulated.

Why: the AIMD control loop is judged over minutes of traffic, and its tests depend on
60-second recovery intervals. Running the *real* limiter code (its futures, ``call_later``
timers and ``asyncio.sleep``) on a loop where time jumps straight to the next scheduled
timer checks exactly what ships, in milliseconds of wall time, with no real sleeping.

Pass ``loop.time`` as the limiter's ``clock`` so both agree on what time it is.
"""

from __future__ import annotations

import asyncio
import selectors
from typing import Any, Coroutine, TypeVar

T = TypeVar("T")


class SimulationStalled(RuntimeError):
    """Nothing is scheduled and nothing can wake the loop: the simulated program deadlocked."""


class _VirtualSelector(selectors.DefaultSelector):  # type: ignore[misc,valid-type]
    """Instead of blocking for ``timeout`` seconds, move the loop's clock forward by it."""

    def __init__(self, stall_timeout_s: float) -> None:
        super().__init__()
        self.loop: VirtualTimeLoop | None = None
        self.stall_timeout_s = stall_timeout_s

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if timeout is None:
            # only real I/O (e.g. a thread finishing the default executor) can wake us now
            events = super().select(self.stall_timeout_s)
            if not events:
                raise SimulationStalled("virtual-time loop: nothing scheduled and nothing to wait for")
            return events
        if timeout > 0 and self.loop is not None:
            self.loop._now += timeout
        # No real wait and no syscall: callbacks from other threads are already queued in the
        # loop's ready list by call_soon_threadsafe; the self-pipe byte only matters for a
        # loop blocked in select, which this one never is while timers are pending.
        return []


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """A selector event loop on simulated time starting at ``start``.

    ``stall_timeout_s`` (real seconds) is how long it waits for real I/O when no timer is
    pending before it declares the simulation stalled.
    """

    def __init__(self, start: float = 0.0, stall_timeout_s: float = 5.0) -> None:
        self._now = float(start)
        sel = _VirtualSelector(stall_timeout_s)
        super().__init__(sel)
        sel.loop = self

    def time(self) -> float:
        return self._now


def run_virtual(coro: Coroutine[Any, Any, T], start: float = 0.0, stall_timeout_s: float = 5.0) -> T:
    """Run ``coro`` to completion on a fresh ``VirtualTimeLoop`` and close it."""
    loop = VirtualTimeLoop(start, stall_timeout_s)
    try:
        return loop.run_until_complete(coro)
    finally:
        try:
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for t in pending:
                t.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        finally:
            loop.close()
