"""Today's state: one process's ledger, kill switch and limiters, behind the state interfaces."""

from __future__ import annotations

import asyncio
import time
from typing import Callable, Mapping

from agentdeck.budget.killswitch import KillSwitch, StopInfo
from agentdeck.budget.ledger import Ledger, Reservation
from agentdeck.budget.sessions import Session, SessionRegistry
from agentdeck.limits import ProviderLimiter
from agentdeck.state.processes import ClusterSnapshot, ProcessRow, ProcessSample, this_host, this_pid


class LocalSpend:
    """``SpendState`` over the in-process ``Ledger`` (whose steps are atomic on one event loop)."""

    __slots__ = ("ledger",)

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    async def reserve(self, key: str, amount_usd: float, session: str | None = None,
                      provider: str | None = None) -> Reservation:
        return self.ledger.reserve(key, amount_usd, session=session)

    async def settle(self, hold: Reservation, actual_usd: float) -> None:
        self.ledger.settle(hold, actual_usd)

    async def release(self, hold: Reservation) -> None:
        self.ledger.release(hold)

    def share_used(self) -> float:
        return self.ledger.share_used()


class LocalStop:
    """``StopState`` over the in-process ``KillSwitch``."""

    __slots__ = ("killswitch",)

    def __init__(self, killswitch: KillSwitch) -> None:
        self.killswitch = killswitch

    async def check(self, key: str, session: str | None = None) -> StopInfo | None:
        return self.killswitch.check(key, session)

    def watch(self, key: str, session: str | None = None) -> asyncio.Event:
        return self.killswitch.watch(key, session)


class LocalRegistry:
    """``ProcessRegistry`` of one process: its own row, read when asked (nothing to heartbeat to)."""

    shared = False

    def __init__(self) -> None:
        self._sample: Callable[[], ProcessSample] = ProcessSample
        self.id = f"{this_host()}:{this_pid()}"

    def start(self, sample: Callable[[], ProcessSample]) -> None:
        self._sample = sample

    async def refresh(self) -> ClusterSnapshot:
        return self._snapshot()

    @property
    def latest(self) -> ClusterSnapshot | None:
        return self._snapshot()

    def _snapshot(self) -> ClusterSnapshot:
        s, now = self._sample(), time.time()
        row = ProcessRow(id=self.id, host=this_host(), pid=this_pid(), address=s.address, started=s.started,
                         in_flight=s.in_flight, rps=s.rps, stopped=s.stopped, last_seen=now)
        return ClusterSnapshot(backend="local", name="", redis="", this=self.id, read_at=now, processes=[row])

    async def close(self) -> None:
        return None


class LocalSessions:
    """``SessionState`` over the in-process ``SessionRegistry``: a key this process did not issue is unknown."""

    __slots__ = ("registry", "ledger")

    def __init__(self, registry: SessionRegistry, ledger: Ledger) -> None:
        self.registry = registry
        self.ledger = ledger

    def lookup(self, secret: str) -> Session | None:
        return self.registry.lookup(secret)

    def may_fetch(self, secret: str) -> bool:
        return False

    async def fetch(self, secret: str) -> Session | None:
        return None

    async def create(self, name: str, budget_usd: float | None = None, parent_key: str | None = None,
                     max_requests: int | None = None) -> tuple[str, str]:
        final, secret = self.registry.create(name, budget_usd, parent_key, max_requests=max_requests)
        if budget_usd is not None:
            self.ledger.set_key_budget(final, float(budget_usd))
        return final, secret

    def take_request(self, name: str) -> bool | None:
        return self.registry.take_request(name)

    async def count_request(self, name: str) -> bool:
        return self.registry.take_request(name)


class LocalBackend:
    """The embedded default: nothing shared beyond this process (``[cluster] backend = "local"``)."""

    def __init__(self, ledger: Ledger, killswitch: KillSwitch, limiters: Mapping[str, ProviderLimiter],
                 sessions: SessionRegistry) -> None:
        self.spend = LocalSpend(ledger)
        self.stop = LocalStop(killswitch)
        self.limits = limiters
        self.sessions = LocalSessions(sessions, ledger)
        self.registry = LocalRegistry()
