"""Today's state: one process's ledger, kill switch and limiters, behind the state interfaces."""

from __future__ import annotations

import asyncio
from typing import Mapping

from agentdeck.budget.killswitch import KillSwitch, StopInfo
from agentdeck.budget.ledger import Ledger, Reservation
from agentdeck.limits import ProviderLimiter


class LocalSpend:
    """``SpendState`` over the in-process ``Ledger`` (whose steps are atomic on one event loop)."""

    __slots__ = ("ledger",)

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    async def reserve(self, key: str, amount_usd: float, session: str | None = None) -> Reservation:
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


class LocalBackend:
    """The embedded default: nothing shared beyond this process (``[cluster] backend = "local"``)."""

    def __init__(self, ledger: Ledger, killswitch: KillSwitch, limiters: Mapping[str, ProviderLimiter]) -> None:
        self.spend = LocalSpend(ledger)
        self.stop = LocalStop(killswitch)
        self.limits = limiters
