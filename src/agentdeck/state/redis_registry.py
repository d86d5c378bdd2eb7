"""The cluster's processes in Redis: each heartbeats its row, any one reads them all.

Why a heartbeat with a TTL rather than a join/leave pair: a process that is ``kill -9``-ed
never says goodbye. Each process writes its row (pid, host, address, started, in flight,
req/s, stop state) once a second from a background task, never on a call's path, and the
row carries an expiry ``ROW_TTL_S`` ahead on Redis's clock; every read drops the rows whose
expiry has passed. So ``agentdeck status`` or the console attached to any process shows
every live process, and a dead one's row is gone a few seconds after it stopped beating. A
process that shuts down cleanly removes its row at once.

The same beat reads what status and the console show for the cluster as a whole: the
shared limits of each provider (current rps and slots, slots held across the cluster) and
each key's day spend, so the once-a-second stats tick reads memory, not Redis.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any, Callable, Mapping

import orjson

from agentdeck.budget.ledger import Ledger
from agentdeck.state.processes import ClusterSnapshot, ProcessRow, ProcessSample, this_host, this_pid
from agentdeck.state.redis_link import RedisDown, RedisLink
from agentdeck.state.redis_spend import _LIB, DAY_BUCKET_S, DAY_BUCKETS, RedisSpend, _scope

BEAT_EVERY_S = 1.0
ROW_TTL_S = 3.0
"""A row lives this long past its last beat: three missed beats, so one slow beat on a loaded
machine does not make a live process blink out of the table."""
MAX_KEYS = 500  # keys and sessions whose day spend each beat reads (status shows the top ones)

# KEYS: procs, expiry, held, then (aimd, slots) per provider, then each key's day window
# ARGV: id, ttl, row json ('' = read only), n providers, n keys, then each key's held-hash field
_BEAT = _LIB + f"""
local id, ttl = ARGV[1], tonumber(ARGV[2])
if ARGV[3] ~= '' then
  redis.call('HSET', KEYS[1], id, string.format('%.6f', now) .. '|' .. ARGV[3])
  redis.call('ZADD', KEYS[2], now + ttl, id)
end
local dead = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)
for _, d in ipairs(dead) do
  redis.call('HDEL', KEYS[1], d)
  redis.call('ZREM', KEYS[2], d)
end
redis.call('EXPIRE', KEYS[1], 86400)
redis.call('EXPIRE', KEYS[2], 86400)
local np, nk = tonumber(ARGV[4]), tonumber(ARGV[5])
local lim = {{}}
for i = 0, np - 1 do
  local v = redis.call('HMGET', KEYS[4 + 2 * i], 'rps', 'slots')
  lim[#lim + 1] = v[1] or ''
  lim[#lim + 1] = v[2] or ''
  lim[#lim + 1] = tostring(redis.call('ZCOUNT', KEYS[5 + 2 * i], '(' .. string.format('%.6f', now), '+inf'))
end
local spent = {{}}
for j = 0, nk - 1 do
  local k = KEYS[4 + 2 * np + j]
  local day = 0
  if redis.call('EXISTS', k) == 1 then day = advance(k, {DAY_BUCKET_S}, {DAY_BUCKETS}) end
  spent[#spent + 1] = string.format('%.17g', day)
  spent[#spent + 1] = redis.call('HGET', KEYS[3], ARGV[6 + j]) or '0'
end
return {{string.format('%.6f', now), redis.call('HGETALL', KEYS[1]), lim, spent}}
"""

# KEYS: procs, expiry; ARGV: id
_LEAVE = """
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
"""


def _text(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


class RedisRegistry:
    """``ProcessRegistry`` over the cluster's Redis; see the module docstring."""

    shared = True

    def __init__(self, link: RedisLink, spend: RedisSpend, limits: Mapping[str, Any], ledger: Ledger) -> None:
        self.link = link
        self.spend = spend
        self.limits = limits
        self.ledger = ledger
        self.id = link.proc
        self._procs, self._expiry = link.key("procs"), link.key("procs", "expiry")
        self._held = link.key("spend", "held")
        self._beat = link.client.register_script(_BEAT)
        self._leave = link.client.register_script(_LEAVE)
        self._sample: Callable[[], ProcessSample] = ProcessSample
        self._latest: ClusterSnapshot | None = None
        self._task: asyncio.Task[None] | None = None
        self._said: str | None = None
        self.beats = 0

    # -- ProcessRegistry ---------------------------------------------------------------------
    def start(self, sample: Callable[[], ProcessSample]) -> None:
        self._sample = sample
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._beat_forever(), name="cluster-heartbeat")

    @property
    def latest(self) -> ClusterSnapshot | None:
        return self._latest

    async def refresh(self) -> ClusterSnapshot:
        sample = self._sample()
        row = orjson.dumps({"host": this_host(), "pid": this_pid(), "address": sample.address,
                            "started": sample.started, "in_flight": sample.in_flight, "rps": sample.rps,
                            "stopped": sample.stopped}).decode()
        return await self._read(row, sample)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        if not self.link.up:
            return  # its row expires after ROW_TTL_S
        try:
            await asyncio.wait_for(self.link.run(self._leave(keys=[self._procs, self._expiry], args=[self.id])), 1.0)
        except (RedisDown, asyncio.TimeoutError, OSError):
            pass
        except Exception as e:
            print(f"agentdeck: leaving the cluster's process table failed: {type(e).__name__}: {e}", file=sys.stderr)

    # -- internals ---------------------------------------------------------------------------
    async def _beat_forever(self) -> None:
        while True:
            try:
                await self.refresh()
                self.beats += 1
            except Exception as e:  # a broken beat must not end the heartbeat; say each new failure once
                said = f"{type(e).__name__}: {e}"
                if said != self._said:
                    self._said = said
                    print(f"agentdeck: cluster heartbeat failed: {said}", file=sys.stderr)
            await asyncio.sleep(BEAT_EVERY_S)

    def _key_names(self) -> list[str]:
        names = {k.name for k in self.ledger.cfg.keys} | set(self.ledger.snapshot().get("keys", {}))
        return sorted(names)[:MAX_KEYS]

    def _limit_keys(self) -> list[tuple[str, str, str]]:
        out = []
        for name, lim in self.limits.items():
            aimd, slots = getattr(lim, "_aimd", None), getattr(lim, "_slots", None)
            if isinstance(aimd, str) and isinstance(slots, str):
                out.append((name, aimd, slots))
        return out

    async def _read(self, row: str, sample: ProcessSample) -> ClusterSnapshot:
        lims, names = self._limit_keys(), self._key_names()
        keys = [self._procs, self._expiry, self._held]
        for _, aimd, slots in lims:
            keys += [aimd, slots]
        keys += [self.link.key("spend", "day", _scope(n)) for n in names]
        args = [self.id, repr(ROW_TTL_S), row, str(len(lims)), str(len(names)), *(_scope(n) for n in names)]
        try:
            out = await self.link.run(self._beat(keys=keys, args=args))
            totals = await self.spend.totals()
        except RedisDown:
            return self._stale(sample, self.link.last_error or "Redis is not answering")
        except Exception as e:  # an error about the command itself: show it rather than stale numbers as fresh
            return self._stale(sample, f"{type(e).__name__}: {e}"[:200])
        now = float(out[0])
        flat = out[1]
        rows = []
        for i in range(0, len(flat), 2):
            seen, _, body = _text(flat[i + 1]).partition("|")
            try:
                d = orjson.loads(body)
            except orjson.JSONDecodeError:
                continue
            d.update(id=_text(flat[i]), last_seen=float(seen))
            rows.append(ProcessRow.from_dict(d))
        rows.sort(key=lambda r: (r.host, r.address, r.pid, r.id))
        limits: dict[str, dict[str, Any]] = {}
        lim_out = out[2]
        for j, (name, _, _) in enumerate(lims):
            rps, slots, held = (_text(x) for x in lim_out[3 * j:3 * j + 3])
            limits[name] = {"rps_limit": float(rps) if rps else None, "slots_limit": int(float(slots)) if slots else None,
                            "cluster_in_flight": int(held)}
        spent = out[3]
        key_spend = {n: {"day_usd": round(float(_text(spent[2 * j])), 6),
                         "reserved_usd": round(max(0.0, float(_text(spent[2 * j + 1]))), 6)}
                     for j, n in enumerate(names)}
        snap = ClusterSnapshot(backend="redis", name=self.link.cfg.name, redis=self.link.where, this=self.id,
                               read_at=now, processes=rows, spend=totals, keys=key_spend, limits=limits)
        self._latest = snap
        return snap

    def _stale(self, sample: ProcessSample, error: str) -> ClusterSnapshot:
        """The last good read marked down (or just this process when there was none)."""
        prev = self._latest
        now = time.time()
        if prev is None:
            own = ProcessRow(id=self.id, host=this_host(), pid=this_pid(), address=sample.address,
                             started=sample.started, in_flight=sample.in_flight, rps=sample.rps,
                             stopped=sample.stopped, last_seen=now)
            prev = ClusterSnapshot(backend="redis", name=self.link.cfg.name, redis=self.link.where, this=self.id,
                                   read_at=now, processes=[own])
        snap = ClusterSnapshot(backend=prev.backend, name=prev.name, redis=prev.redis, this=prev.this,
                               read_at=prev.read_at, up=False, error=error, processes=prev.processes,
                               spend=None, keys={}, limits={})  # its limiters say what they last knew
        self._latest = snap
        return snap


__all__ = ["BEAT_EVERY_S", "ROW_TTL_S", "RedisRegistry"]
