"""The interfaces the request path uses for state that a cluster would share.

Why async where the local implementation is synchronous: a shared implementation must
make a network round trip for the atomic steps (check-and-reserve, the stop read at
admission), and the stages should not change when one is added.
"""

from __future__ import annotations

import asyncio
from typing import Any, AsyncContextManager, Callable, Mapping, Protocol

from agentdeck.budget.killswitch import StopInfo
from agentdeck.budget.ledger import Reservation
from agentdeck.budget.sessions import Session, SessionRegistry
from agentdeck.state.processes import ClusterSnapshot, ProcessSample


class SpendState(Protocol):
    """The rolling budget windows and the open reservations against them."""

    async def reserve(self, key: str, amount_usd: float, session: str | None = None,
                      provider: str | None = None) -> Reservation:
        """Hold ``amount_usd`` against every budget that covers the call, atomically; BudgetExceeded if one cannot.

        ``provider`` names where the call goes: a shared backend may take the call's in-flight slot in the
        same step (one round trip instead of two); the local one ignores it.
        """
        ...

    async def settle(self, hold: Reservation, actual_usd: float) -> None:
        """Turn a hold into spend of ``actual_usd`` (and free the rest)."""
        ...

    async def release(self, hold: Reservation) -> None:
        """Free a hold that turned into no spend."""
        ...

    def share_used(self) -> float:
        """The fuller of the hourly and daily budgets, 0..1 (for budget-aware downgrade)."""
        ...


class StopState(Protocol):
    """The emergency stop: global, or per key or session."""

    async def check(self, key: str, session: str | None = None) -> StopInfo | None:
        """Why a call by ``key`` must be refused now, or None."""
        ...

    def watch(self, key: str, session: str | None = None) -> asyncio.Event:
        """An event set when a stop covers ``key``/``session`` (ends open streams)."""
        ...


class SessionState(Protocol):
    """The sessions `agentdeck run` creates: which session a presented secret is, and each one's call count.

    Why ``lookup`` and ``fetch`` apart: admission runs on every call, so the answer for a
    session this process already knows is a dict read (``lookup``); only a session secret it
    has not seen (one another process issued) costs a round trip (``fetch``), once.
    """

    registry: SessionRegistry
    """This process's view of the sessions (status, console); it holds digests, never secrets."""

    def lookup(self, secret: str) -> Session | None:
        """The session of ``secret`` if this process knows it (no I/O)."""
        ...

    def may_fetch(self, secret: str) -> bool:
        """Whether a ``lookup`` miss for ``secret`` is worth asking ``fetch`` (a session key, a shared registry)."""
        ...

    async def fetch(self, secret: str) -> Session | None:
        """The session of ``secret`` from wherever sessions are shared (then known to ``lookup``), or None."""
        ...

    async def create(self, name: str, budget_usd: float | None = None, parent_key: str | None = None,
                     max_requests: int | None = None) -> tuple[str, str]:
        """Issue a session; (the name it got, its secret). The secret is returned once and kept nowhere."""
        ...

    def take_request(self, name: str) -> bool | None:
        """Count one call in process: True (go), False (over ``max_requests``), None (``count_request`` decides)."""
        ...

    async def count_request(self, name: str) -> bool:
        """Count one call of a session whose request limit is shared; False when it is used up."""
        ...


class BreakerState(Protocol):
    def allow(self) -> bool: ...
    def record_failure(self) -> None: ...
    def record_success(self) -> None: ...


class LimitState(Protocol):
    """One provider's adaptive limits: in-flight slots, pacing, and what each answer says about them."""

    breaker: BreakerState

    def slot(self) -> AsyncContextManager[None]:
        """Hold one in-flight slot for a whole call (retries and fallback included); Throttled past the queue wait."""
        ...

    async def pace(self) -> None:
        """Wait for the provider's request rate to allow one more attempt."""
        ...

    def observe(self, status: int, headers: Mapping[str, str] | None = None) -> None:
        """Feed an answer's status and rate-limit headers to AIMD."""
        ...

    def snapshot(self) -> dict[str, Any]:
        ...


class ProcessRegistry(Protocol):
    """The gateway processes that serve together: each heartbeats its row, status reads them all.

    ``shared`` is False for the local backend (one process, one row, nothing to show beyond it).
    """

    shared: bool

    def start(self, sample: Callable[[], ProcessSample]) -> None:
        """Begin heartbeating ``sample()`` (a background task; never on the request path)."""
        ...

    async def refresh(self) -> ClusterSnapshot:
        """Beat now and read the cluster (the status endpoint's fresh read)."""
        ...

    @property
    def latest(self) -> ClusterSnapshot | None:
        """The last read (at most a heartbeat old), without a round trip: what the timers read."""
        ...

    async def close(self) -> None:
        """Stop beating and leave (the row goes at once instead of after its TTL)."""
        ...


class StateBackend(Protocol):
    """Where a gateway's shared state lives; the composition root asks it for each part."""

    spend: SpendState
    stop: StopState
    limits: Mapping[str, LimitState]
    sessions: SessionState
    registry: ProcessRegistry
