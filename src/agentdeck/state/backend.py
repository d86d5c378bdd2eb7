"""Which state backend a gateway uses: the one place ``[cluster] backend`` is read.

Why a function of its own: the local default must not import Redis at all (start-up time,
and a gateway without the cluster needs nothing more), so the Redis modules load only
when the config asks for them.
"""

from __future__ import annotations

from typing import Mapping

from agentdeck.budget.killswitch import KillSwitch
from agentdeck.budget.ledger import Ledger
from agentdeck.budget.sessions import SessionRegistry
from agentdeck.bus import Bus
from agentdeck.config import Config
from agentdeck.limits import ProviderLimiter
from agentdeck.state.interfaces import StateBackend
from agentdeck.state.local import LocalBackend


def make_backend(cfg: Config, ledger: Ledger, killswitch: KillSwitch, limiters: Mapping[str, ProviderLimiter],
                 bus: Bus, sessions: SessionRegistry) -> StateBackend:
    """``LocalBackend`` for ``backend = "local"`` (today's behaviour), ``RedisBackend`` for ``"redis"``."""
    if cfg.cluster.backend == "redis":
        from agentdeck.state.redis_backend import RedisBackend

        return RedisBackend(cfg.cluster, ledger, killswitch, limiters, bus, sessions, {k.name for k in cfg.keys})
    return LocalBackend(ledger, killswitch, limiters, sessions)
