"""One emergency stop for the whole cluster: a Redis hash read at admission, plus pub/sub.

Why both: the hash is what admission reads (one HMGET per call), so a pub/sub message that
is lost cannot let a call through; the message is what ends the open streams of other
processes at once and keeps their kill switches (status, console, resume) in step.

Commands keep going through each process's :class:`~agentdeck.budget.killswitch.KillSwitch`
(memory first, the bus, the SQLite row): this module watches the bus for the StopChanged
those commands publish and writes them to Redis. So a stop is recorded once, in the SQLite
of the process that took the command; the others apply it in memory only (no row, no bus
event, so no echo back to Redis).

Start-up: while the cluster has state in Redis (its ``init`` marker), Redis is the truth and
this process's kill switch is set to match it: a process started while the cluster is
stopped starts stopped, and a stop lifted while it was down stays lifted. A fresh Redis
(no marker) is seeded with the stops this process has on disk.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import orjson

from agentdeck.budget.killswitch import KillSwitch, StopInfo
from agentdeck.bus import Bus, StopChanged
from agentdeck.state.redis_link import RedisDown, RedisLink

GLOBAL = "*"  # the hash field of the global stop (key and session stops use their name)

# KEYS: stops, init marker; ARGV: field/json pairs to seed when the cluster has no state yet.
_INIT = """
if redis.call('EXISTS', KEYS[2]) == 0 then
  for i = 1, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
  redis.call('SET', KEYS[2], '1')
end
return redis.call('HGETALL', KEYS[1])
"""

# KEYS: stops, init marker; ARGV: channel, field, json ('' = resume), message
_CHANGE = """
if ARGV[3] == '' then redis.call('HDEL', KEYS[1], ARGV[2]) else redis.call('HSET', KEYS[1], ARGV[2], ARGV[3]) end
redis.call('SET', KEYS[2], '1')
redis.call('PUBLISH', ARGV[1], ARGV[4])
return 1
"""


def _info(raw: bytes | str) -> StopInfo:
    d = orjson.loads(raw)
    return StopInfo(reason=str(d.get("reason") or ""), key=d.get("key"), actor=str(d.get("actor") or "api"),
                    since=float(d.get("since") or 0.0))


class RedisStop:
    """``StopState`` for a cluster; see the module docstring."""

    def __init__(self, link: RedisLink, killswitch: KillSwitch, bus: Bus) -> None:
        self.link = link
        self.killswitch = killswitch
        self._stops, self._init = link.key("stop"), link.key("stop", "init")
        self._channel = link.key("stop", "changes")
        self._init_script = link.client.register_script(_INIT)
        self._change = link.client.register_script(_CHANGE)
        # Subscribed now, before any command can run, so no local stop is missed.
        self._commands = bus.subscribe("cluster-stop", types={"stop"})
        self._unsent: list[StopChanged] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._started: asyncio.Future[None] | None = None
        self.applied_remote = 0
        link.on_recovery(self._resync)

    # -- StopState -------------------------------------------------------------------------
    async def check(self, key: str, session: str | None = None) -> StopInfo | None:
        await self.start()
        info = self.killswitch.check(key, session)
        if info is not None:
            return info
        if not self.link.up:
            if self.link.fallback:
                return None
            raise self.link.unavailable()
        fields = [GLOBAL, key] if session is None else [GLOBAL, key, session]
        try:
            raw = await self.link.run(self.link.client.hmget(self._stops, fields))
        except RedisDown:
            if self.link.fallback:
                return None
            raise self.link.unavailable() from None
        except Exception as e:
            print(f"agentdeck: cluster stop read failed: {type(e).__name__}: {e}", file=sys.stderr)
            raise self.link.unavailable() from None
        for field, value in zip(fields, raw):
            if value is not None:
                info = _info(value)
                self._apply(None if field == GLOBAL else field, info)
                return info
        return None

    def watch(self, key: str, session: str | None = None) -> asyncio.Event:
        return self.killswitch.watch(key, session)

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        """Read the cluster's stop state and start following it (idempotent; the first call does the work)."""
        if self._started is not None:
            if not self._started.done():
                await asyncio.shield(self._started)
            return
        self._started = asyncio.get_running_loop().create_future()
        try:
            await self._resync()
        except RedisDown:
            pass  # the link is down and probing; _resync runs again when Redis is back
        finally:
            self._started.set_result(None)
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._send_commands(), name="cluster-stop-send"),
                       loop.create_task(self._follow(), name="cluster-stop-follow")]

    async def close(self) -> None:
        for t in self._tasks:
            t.cancel()
        self._commands.close()

    # -- internals -------------------------------------------------------------------------
    async def _resync(self) -> None:
        """Send what was queued while Redis was down, then make this process's switch match the cluster's."""
        await self._flush()
        ks = self.killswitch.state()
        seed: list[str] = []
        g = self.killswitch._global
        if g is not None:
            seed += [GLOBAL, orjson.dumps(g.to_dict()).decode()]
        for name, d in ks["stops"].items():
            seed += [name, orjson.dumps(d).decode()]
        raw = await self.link.run(self._init_script(keys=[self._stops, self._init], args=seed))
        cluster = {raw[i].decode(): _info(raw[i + 1]) for i in range(0, len(raw), 2)}
        self._apply(None, cluster.pop(GLOBAL, None))
        for name in list(ks["stops"]):
            if name not in cluster:
                self._apply(name, None)
        for name, info in cluster.items():
            self._apply(name, info)

    def _apply(self, key: str | None, info: StopInfo | None) -> None:
        """Set this process's switch to a stop taken elsewhere (memory only: the origin recorded it)."""
        ks = self.killswitch
        if key is None:
            if info is None and ks._global is None:
                return
            if info is not None and ks._global is not None:
                return
            ks._global = info
        else:
            if (key in ks._keys) == (info is not None):
                return
            if info is None:
                ks._keys.pop(key, None)
            else:
                ks._keys[key] = info
        if info is not None:
            ks._fire(key)
        self.applied_remote += 1

    async def _send_commands(self) -> None:
        while True:
            for ev in await self._commands.get_batch():
                if isinstance(ev, StopChanged):
                    self._unsent.append(ev)
            try:
                await self._flush()
            except RedisDown:
                pass  # kept in _unsent; the recovery hook sends it

    async def _flush(self) -> None:
        # Commands still on the bus go first: a resync must never undo a local stop not yet sent.
        self._unsent.extend(ev for ev in self._commands.drain() if isinstance(ev, StopChanged))
        while self._unsent:
            ev = self._unsent[0]
            field = GLOBAL if ev.key is None else ev.key
            body = ""
            if ev.stopped:
                body = orjson.dumps({"reason": ev.reason or "", "key": ev.key, "actor": ev.actor, "since": ev.ts}).decode()
            msg = orjson.dumps({"origin": self.link.proc, "field": field, "stop": body}).decode()
            await self.link.run(self._change(keys=[self._stops, self._init], args=[self._channel, field, body, msg]))
            self._unsent.pop(0)

    async def _follow(self) -> None:
        """Apply the stops and resumes other processes publish; reconnect (and resync) after a loss."""
        while True:
            pubsub = self.link.client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self._channel)
                if self.link.up:
                    await self._resync()  # anything missed while not subscribed
                async for message in pubsub.listen():
                    self._on_message(message)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # lost the connection: the read at admission still guards calls
                if self.link.up:
                    self.link.mark_down(e)
            finally:
                try:
                    await pubsub.aclose()
                except Exception:
                    pass
            await asyncio.sleep(0.2)

    def _on_message(self, message: dict[str, Any]) -> None:
        try:
            d = orjson.loads(message["data"])
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return
        if d.get("origin") == self.link.proc:
            return
        field = d.get("field")
        body = d.get("stop") or ""
        self._apply(None if field == GLOBAL else str(field), _info(body) if body else None)
