"""One process's connection to the cluster's Redis, and what "Redis is down" means for it.

Why a link object: every shared part (spend, stop, limits) must agree on whether Redis is
reachable. The first failed command marks the link down and says so once (a P0 alert);
while it is down, commands fail at once instead of each paying a timeout, and a probe
pings Redis until it answers. Then the parts' recovery hooks run (pending settlements are
written, the stop state is re-read) and the link is up again.

A failure is a connection or timeout error. A Redis error about the command itself (a bug
of ours, a wrong server) is not "down": it is raised as ``ClusterUnavailable`` for the call
but leaves the link up.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from typing import Any, Awaitable, Callable, Sequence
from urllib.parse import urlsplit

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from agentdeck.bus import Alert, Bus
from agentdeck.config import ClusterConfig
from agentdeck.gateway.call import Refusal
from agentdeck.state.redis_mux import Lua, RedisMux

PROBE_EVERY_S = 0.2
POOL_SIZE = 256
POOL_WAIT_S = 10.0
_DOWN_ERRORS = (RedisConnectionError, RedisTimeoutError, OSError, asyncio.TimeoutError)


class ClusterUnavailable(Refusal):
    """The cluster's shared state cannot be read: the call is refused with 503 (fail closed)."""

    def __init__(self, where: str, detail: str) -> None:
        super().__init__(
            503, f"agentdeck: the cluster's Redis at {where} is unreachable ({detail}); new calls are refused "
                 "until it is back ([cluster] on_redis_down = \"fail\"); retry shortly",
            "cluster_unavailable", {"retry-after": "1"})


class RedisDown(Exception):
    """A command failed because Redis is unreachable (the link is now down)."""


def redis_where(url: str) -> str:
    """host:port of a Redis URL, for messages: never the password or the user."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return parts.path or "unix socket"
    host = parts.hostname or "127.0.0.1"
    return f"{host}:{parts.port or 6379}"


def process_id() -> str:
    """Who this process is in the cluster: host, pid and a random tag (pids repeat across hosts and restarts)."""
    return f"{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}"


RecoveryHook = Callable[[], Awaitable[None]]


class RedisLink:
    """The client, the key prefix, and the up/down state shared by the cluster's parts."""

    def __init__(self, cfg: ClusterConfig, bus: Bus) -> None:
        self.cfg = cfg
        self.bus = bus
        self.where = redis_where(cfg.url)
        self.proc = process_id()
        self.prefix = f"agentdeck:{cfg.name}:"
        pool = aioredis.BlockingConnectionPool.from_url(
            # A wait for a free connection is not Redis being down: it gets a long bound (a Redis that
            # hangs is caught by op_timeout_s on the connections that are out).
            cfg.url, max_connections=POOL_SIZE, timeout=POOL_WAIT_S,
            socket_connect_timeout=cfg.connect_timeout_s, socket_timeout=cfg.op_timeout_s,
            retry=Retry(NoBackoff(), 0))
        self.client: aioredis.Redis = aioredis.Redis(connection_pool=pool)
        # The scripts (every hot-path step) go over one pipelined connection; pub/sub and the rest use the pool.
        self.mux = RedisMux(cfg.url, cfg.connect_timeout_s, cfg.op_timeout_s)
        # provider -> its shared limit (redis_limits fills it): a budget hold takes the call's slot in the same script
        self.limits: dict[str, Any] = {}
        # the stop follower's hook: a budget hold tells it which version of the stop hash it saw (redis_stop)
        self.stop_seen: Callable[[bytes, float], None] | None = None
        self.up = True
        self.last_error = ""
        self.fallback = cfg.on_redis_down == "local"
        self._hooks: list[RecoveryHook] = []
        self._probe: asyncio.Task[None] | None = None
        self._recovering = False

    def key(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    def on_recovery(self, hook: RecoveryHook) -> None:
        """Run ``hook`` each time Redis answers again after being down."""
        self._hooks.append(hook)

    def lua(self, text: str) -> Lua:
        """A script for ``eval``/``eval_soon`` (loaded on each new connection)."""
        return self.mux.register(Lua(text))

    async def eval(self, script: Lua, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """Run one script and wait for its reply: RedisDown when Redis is unreachable (or already known down)."""
        if not self.up:
            raise RedisDown(self.last_error)
        try:
            return await self.mux.eval(script, keys, args)
        except _DOWN_ERRORS as e:
            self.mark_down(e)
            raise RedisDown(self.last_error) from None

    def eval_soon(self, script: Lua, keys: Sequence[str], args: Sequence[Any]) -> "asyncio.Future[Any] | None":
        """Send one script without waiting for it (settle, release); None when Redis is known down.

        The future's error is the raw one; ``failed`` tells "Redis down" (and marks the link) from the rest.
        """
        if not self.up:
            return None
        return self.mux.evalsha(script, keys, args, soon=True)

    def failed(self, err: BaseException) -> bool:
        """For an ``eval_soon`` future's error: True (and the link marked down) when it means Redis is unreachable."""
        if isinstance(err, _DOWN_ERRORS):
            self.mark_down(err)
            return True
        return False

    def unavailable(self) -> ClusterUnavailable:
        return ClusterUnavailable(self.where, self.last_error or "not answering")

    async def run(self, op: Awaitable[Any]) -> Any:
        """Await one Redis command: RedisDown when Redis is unreachable (or already known down)."""
        if not self.up:
            if asyncio.iscoroutine(op):
                op.close()
            raise RedisDown(self.last_error)
        try:
            return await op
        except _DOWN_ERRORS as e:
            self.mark_down(e)
            raise RedisDown(self.last_error) from None

    def mark_down(self, err: BaseException) -> None:
        if not self.up:
            return  # the first failure's reason stands (commands failed by dropping the connection say less)
        self.last_error = f"{type(err).__name__}: {err}"[:200]
        self.up = False
        self.mux.drop_connection()
        if self._recovering:
            return  # the probe is running and said so already
        then = ("new calls run on this process's own budget, stop and limits until it is back "
                "(on_redis_down = \"local\"): the cluster's budget is not enforced across processes")
        if not self.fallback:
            then = "new calls get 503 cluster_unavailable until it is back (on_redis_down = \"fail\")"
        self.bus.publish(Alert(severity="P0", kind="cluster-redis-down",
                               message=f"cluster '{self.cfg.name}': Redis at {self.where} is unreachable "
                                       f"({self.last_error}); {then}"))
        print(f"agentdeck: cluster Redis at {self.where} is unreachable ({self.last_error}); {then}", file=sys.stderr)
        if self._probe is None or self._probe.done():
            self._probe = asyncio.get_running_loop().create_task(self._wait_for_redis(), name="cluster-probe")

    async def _wait_for_redis(self) -> None:
        """Ping until Redis answers, then run the recovery hooks; start over if it fails again meanwhile."""
        while True:
            await asyncio.sleep(PROBE_EVERY_S)
            try:
                # Connections idle in the pool since the outage are dead sockets: drop them first.
                await self.client.connection_pool.disconnect(inuse_connections=False)
                await self.client.ping()
            except (RedisError, *_DOWN_ERRORS) as e:
                self.last_error = f"{type(e).__name__}: {e}"[:200]
                continue
            self.up = True
            if await self._recover():
                break
            self.up = False
        self.bus.publish(Alert(severity="P1", kind="cluster-redis-back",
                               message=f"cluster '{self.cfg.name}': Redis at {self.where} answers again; "
                                       "shared budget, stop and limits are back in force"))

    async def _recover(self) -> bool:
        self._recovering = True
        try:
            for hook in self._hooks:
                try:
                    await hook()
                except RedisDown:
                    return False
                except Exception as e:  # a broken hook must not keep the link down; say so
                    print(f"agentdeck: cluster recovery step failed: {type(e).__name__}: {e}", file=sys.stderr)
            return self.up
        finally:
            self._recovering = False

    async def close(self) -> None:
        if self._probe is not None:
            self._probe.cancel()
        await self.mux.close(self.cfg.op_timeout_s if self.up else 0.0)
        await self.client.aclose()
