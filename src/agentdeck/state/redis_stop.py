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
READ_EVERY_S = 0.05
"""Admission reads the stop hash when the last read is older than this: pub/sub brings a stop at
once, and a lost message delays it by at most this long (one read per 50 ms, not one per call)."""

# Every change of the stop hash bumps its version (KEYS[3] below): a budget hold returns the version it saw,
# and a process whose last read saw the same version knows its switch is current without reading again.

# KEYS: stops, init marker, version; ARGV: field/json pairs to seed when the cluster has no state yet.
# Returns {version, {field, json, ...}}.
_INIT = """
if redis.call('EXISTS', KEYS[2]) == 0 then
  for i = 1, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
  redis.call('SET', KEYS[2], '1')
  redis.call('INCR', KEYS[3])
end
return {redis.call('GET', KEYS[3]) or '', redis.call('HGETALL', KEYS[1])}
"""

# KEYS: stops, version. The cluster's stops as {version, {field, json, ...}} (a script: it shares the
# pipelined connection, and the version comes with the hash it belongs to).
_READ = "return {redis.call('GET', KEYS[2]) or '', redis.call('HGETALL', KEYS[1])}"

# KEYS: stops, init marker, version; ARGV: channel, field, json ('' = resume), message
_CHANGE = """
if ARGV[3] == '' then redis.call('HDEL', KEYS[1], ARGV[2]) else redis.call('HSET', KEYS[1], ARGV[2], ARGV[3]) end
redis.call('SET', KEYS[2], '1')
redis.call('INCR', KEYS[3])
redis.call('PUBLISH', ARGV[1], ARGV[4])
return 1
"""


def stop_version_key(link: RedisLink) -> str:
    """The stop hash's version counter (the budget hold's script reads it too)."""
    return link.key("stop", "ver")


def _quiet(task: "asyncio.Task[None]") -> None:
    """A background read's failure is the admission's business (it reads again); never an unhandled error."""
    if not task.cancelled():
        task.exception()


def _info(raw: bytes | str) -> StopInfo:
    d = orjson.loads(raw)
    return StopInfo(reason=str(d.get("reason") or ""), key=d.get("key"), actor=str(d.get("actor") or "api"),
                    since=float(d.get("since") or 0.0))


class RedisStop:
    """``StopState`` for a cluster; see the module docstring."""

    def __init__(self, link: RedisLink, killswitch: KillSwitch, bus: Bus) -> None:
        self.link = link
        self.killswitch = killswitch
        self._stops, self._init, self._ver_key = link.key("stop"), link.key("stop", "init"), stop_version_key(link)
        self._ver: bytes | None = None  # the version of the hash as of this process's last full read
        self._channel = link.key("stop", "changes")
        self._init_script = link.lua(_INIT)
        self._change = link.lua(_CHANGE)
        self._read_script = link.lua(_READ)
        # Subscribed now, before any command can run, so no local stop is missed.
        self._commands = bus.subscribe("cluster-stop", types={"stop"})
        self._unsent: list[StopChanged] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._started: asyncio.Future[None] | None = None
        self._reading: asyncio.Task[None] | None = None
        self._sending = asyncio.Lock()
        self._fresh_until = -1.0
        self._remote: set[str] = set()  # fields whose stop in this process came from the cluster
        self.applied_remote = 0
        self.reads = 0  # full reads of the stop hash (admission's, and those a changed version asked for)
        link.on_recovery(self._resync)
        link.stop_seen = self.seen

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
        if asyncio.get_running_loop().time() < self._fresh_until:
            return None  # read less than READ_EVERY_S ago, and pub/sub applies what changed since
        try:
            await self._read()
        except RedisDown:
            if self.link.fallback:
                return None
            raise self.link.unavailable() from None
        except Exception as e:
            print(f"agentdeck: cluster stop read failed: {type(e).__name__}: {e}", file=sys.stderr)
            raise self.link.unavailable() from None
        return self.killswitch.check(key, session)

    async def _read(self) -> None:
        """Read the cluster's stops into this process's switch; concurrent admissions share one read."""
        if self._reading is None or self._reading.done():
            self._reading = asyncio.get_running_loop().create_task(self._read_once())
        await asyncio.shield(self._reading)

    def seen(self, version: bytes, asked_at: float) -> None:
        """A budget hold sent at ``asked_at`` (loop time) saw the stop hash at ``version``.

        The same version as this process's last read: nothing changed since, so the switch is current
        as of then and admission need not read for another READ_EVERY_S (under traffic, no stop read at
        all). Another version: read now, in the background (the next admission waits for that read).
        """
        if version == self._ver:
            if asked_at + READ_EVERY_S > self._fresh_until:
                self._fresh_until = asked_at + READ_EVERY_S
            return
        if self._reading is None or self._reading.done():
            self._reading = asyncio.get_running_loop().create_task(self._read_once())
            self._reading.add_done_callback(_quiet)

    async def _read_once(self) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        await self._flush()  # a local command not yet sent must not be undone by what Redis still says
        self.reads += 1
        ver, raw = await self.link.eval(self._read_script, [self._stops, self._ver_key], [])
        cluster = {raw[i].decode(): _info(raw[i + 1]) for i in range(0, len(raw), 2)}
        self._apply(None, cluster.pop(GLOBAL, None), only_remote=True)
        for name in [n for n in self._remote if n != GLOBAL and n not in cluster]:
            self._apply(name, None, only_remote=True)
        for name, info in cluster.items():
            self._apply(name, info)
        self._ver = ver
        self._fresh_until = started + READ_EVERY_S

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
        ver, raw = await self.link.eval(self._init_script, [self._stops, self._init, self._ver_key], seed)
        cluster = {raw[i].decode(): _info(raw[i + 1]) for i in range(0, len(raw), 2)}
        self._apply(None, cluster.pop(GLOBAL, None))
        for name in list(ks["stops"]):
            if name not in cluster:
                self._apply(name, None)
        for name, info in cluster.items():
            self._apply(name, info)
        self._ver = ver

    def _apply(self, key: str | None, info: StopInfo | None, only_remote: bool = False) -> None:
        """Set this process's switch to a stop taken elsewhere (memory only: the origin recorded it).

        ``only_remote``: lift only a stop that came from the cluster, never one this process
        took and has not sent yet (a periodic read must not undo a local command in flight).
        """
        ks = self.killswitch
        field = GLOBAL if key is None else key
        if only_remote and info is None and field not in self._remote:
            return
        if info is None:
            self._remote.discard(field)
        else:
            self._remote.add(field)
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
        if not self._unsent:
            return
        async with self._sending:
            await self._flush_locked()

    async def _flush_locked(self) -> None:
        while self._unsent:
            ev = self._unsent[0]
            field = GLOBAL if ev.key is None else ev.key
            self._remote.discard(field)
            body = ""
            if ev.stopped:
                body = orjson.dumps({"reason": ev.reason or "", "key": ev.key, "actor": ev.actor, "since": ev.ts}).decode()
            msg = orjson.dumps({"origin": self.link.proc, "field": field, "stop": body}).decode()
            await self.link.eval(self._change, [self._stops, self._init, self._ver_key],
                                 [self._channel, field, body, msg])
            self._ver = None  # others may have changed it too meanwhile: the next hold's version makes us read
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
