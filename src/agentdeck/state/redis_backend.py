"""The cluster backend: spend, the emergency stop and provider limits shared through Redis
(``[cluster] backend = "redis"``); docs/cluster.md says what is shared and what is not yet.
"""

from __future__ import annotations

from typing import Mapping

from agentdeck.budget.killswitch import KillSwitch
from agentdeck.budget.ledger import Ledger
from agentdeck.budget.sessions import SessionRegistry
from agentdeck.bus import Bus
from agentdeck.config import ClusterConfig
from agentdeck.limits import ProviderLimiter
from agentdeck.state.redis_limits import shared_limits
from agentdeck.state.redis_link import RedisLink
from agentdeck.state.redis_registry import RedisRegistry
from agentdeck.state.redis_sessions import RedisSessions
from agentdeck.state.redis_spend import RedisSpend
from agentdeck.state.redis_stop import RedisStop


class RedisBackend:
    """``StateBackend`` over one Redis; ``start`` reads the cluster's state, ``close`` lets go of it."""

    def __init__(self, cfg: ClusterConfig, ledger: Ledger, killswitch: KillSwitch,
                 limiters: Mapping[str, ProviderLimiter], bus: Bus, sessions: SessionRegistry,
                 reserved_names: set[str]) -> None:
        self.link = RedisLink(cfg, bus)
        self.spend = RedisSpend(self.link, ledger)
        self.stop = RedisStop(self.link, killswitch, bus)
        self.limits, self._freed = shared_limits(self.link, limiters, bus)
        self.sessions = RedisSessions(self.link, sessions, ledger, reserved_names)
        self.registry = RedisRegistry(self.link, self.spend, self.limits, ledger)

    async def start(self) -> None:
        """Call after the kill switch has loaded its stops and the registry its sessions from disk, before serving."""
        await self.stop.start()
        await self.sessions.start()

    async def close(self) -> None:
        await self.registry.close()
        await self.stop.close()
        await self.spend.close()
        for lim in self.limits.values():
            lim.close()
        self._freed.close()
        await self.link.close()
