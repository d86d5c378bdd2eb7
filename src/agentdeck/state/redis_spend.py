"""The ledger in Redis: reserve, settle and release as Lua scripts, so the check-and-add is
one atomic step across every process of the cluster.

Same model as the local :class:`~agentdeck.budget.ledger.Ledger`: rolling windows kept in
buckets (1 minute for the hour, 10 minutes for the day; global, per key and per session),
and every call holds its worst-case cost before it goes out. Each window is a Redis hash of
bucket -> dollars plus its running total (``t``) and the bucket it was last advanced to
(``c``), so a read is O(1) except once per bucket, when old buckets are dropped and the
total recomputed. Time is Redis's own clock (``TIME``): processes with skewed clocks still
share one window.

Reservations carry a lease: a sorted set of hold -> expiry. Each process renews the leases
of its open holds every third of the lease; a process that dies stops renewing, and the
next reserve (any process) drops its expired holds. A settle whose hold already expired
still counts its spend: the call happened, and the ledger must match the rows stored.

A settle is sent without the call waiting for it, and it is idempotent, so that one whose
reply was lost (Redis hung or the connection broke after it was sent) can be sent again
without counting twice: it counts when its hold is still open, when the hold lapsed first
(lapsed holds are remembered for a day), or when Redis is not the one the hold was taken
in (an ``epoch`` marker: a Redis that restarted empty gets the spend back), and not when
the hold was settled already.

When Redis is down a settle is queued and written once it is back (calls in flight finish
and settle); a reserve either refuses the call (503 ``cluster_unavailable``) or, with
``on_redis_down = "local"``, holds against this process's own ledger.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import sys
import time
from typing import Any

from agentdeck.budget.ledger import DAY_S, HOUR_S, REACHED_SHARE, BudgetExceeded, Ledger, Reservation, usd
from agentdeck.bus import Alert
from agentdeck.state.local import LocalSpend
from agentdeck.state.redis_limits import ACQUIRE_LUA, RedisLimit, drop_prefetched
from agentdeck.state.redis_link import RedisDown, RedisLink
from agentdeck.state.redis_stop import stop_version_key

HOUR_BUCKET_S = 60
HOUR_BUCKETS = 60
DAY_BUCKET_S = 600
DAY_BUCKETS = 144

# Shared by every script: the clock, one window's advance (drop old buckets) and add.
_LIB = """
local EPS = 1e-12
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local function advance(k, bucket_s, n)
  local cur = math.floor(now / bucket_s)
  local v = redis.call('HMGET', k, 'c', 't')
  if cur <= tonumber(v[1] or '-1') then return tonumber(v[2] or '0') end
  local all = redis.call('HGETALL', k)
  local total = 0
  for i = 1, #all, 2 do
    local f = all[i]
    if f ~= 't' and f ~= 'c' then
      if tonumber(f) <= cur - n then redis.call('HDEL', k, f) else total = total + tonumber(all[i + 1]) end
    end
  end
  if total < EPS then total = 0 end
  redis.call('HSET', k, 't', string.format('%.17g', total), 'c', tostring(cur))
  -- once per bucket while in use (here, not at every add): the window outlives its last bucket
  redis.call('EXPIRE', k, bucket_s * (n + 1))
  return total
end
local function add(k, bucket_s, n, amount)
  advance(k, bucket_s, n)
  redis.call('HINCRBYFLOAT', k, tostring(math.floor(now / bucket_s)), amount)
  return tonumber(redis.call('HINCRBYFLOAT', k, 't', amount))
end
local function unhold(held, field, amount)
  if field == '' then return end
  local v = tonumber(redis.call('HINCRBYFLOAT', held, field, -amount))
  if v <= EPS then redis.call('HDEL', held, field) end
end
local function close(leases, res, held, id)
  local info = redis.call('HGET', res, id)
  redis.call('ZREM', leases, id)
  if not info then return false end
  redis.call('HDEL', res, id)
  -- amount|len(kscope)|kscope..sscope: a key name may hold any character, so no separator between scopes
  local amount, klen, rest = string.match(info, '^([^|]*)|(%d+)|(.*)$')
  amount, klen = tonumber(amount), tonumber(klen)
  local kscope, sscope = string.sub(rest, 1, klen), string.sub(rest, klen + 1)
  unhold(held, 'g', amount)
  unhold(held, kscope, amount)
  unhold(held, sscope, amount)
  if redis.call('ZCARD', leases) == 0 then redis.call('DEL', held) end
  return true
end
-- Holds whose lease ran out (their process died, or could not reach Redis): dropped, and remembered for a
-- day in ``lapsed`` so that a settle arriving later still counts its spend once (see _SETTLE).
local function drop_expired(leases, res, held, lapsed, limit)
  local ids
  if limit then ids = redis.call('ZRANGEBYSCORE', leases, '-inf', now, 'LIMIT', 0, limit)
  else ids = redis.call('ZRANGEBYSCORE', leases, '-inf', now) end
  if #ids == 0 then return end
  for _, id in ipairs(ids) do
    if close(leases, res, held, id) then redis.call('ZADD', lapsed, now, id) end
  end
  redis.call('ZREMRANGEBYSCORE', lapsed, '-inf', now - 86400)
  redis.call('EXPIRE', lapsed, 90000)
end
"""

# KEYS: leases, res, held, hour_g, day_g, day_key, day_session, lapsed, epoch, stop version
# ARGV: id, amount, lease_s, hourly, daily, key_limit, session_limit, kscope, sscope ('' = none), epoch candidate
# Returns {'ok', hour used, day used, epoch, stop version} or {budget, limit, spent, held}.
_RESERVE_FN = f"""
local function reserve()
drop_expired(KEYS[1], KEYS[2], KEYS[3], KEYS[8], 256)
local amount = tonumber(ARGV[2])
local hourly, daily = tonumber(ARGV[4]), tonumber(ARGV[5])
local klimit, slimit = tonumber(ARGV[6]), tonumber(ARGV[7])
local kscope, sscope = ARGV[8], ARGV[9]
local held_g = tonumber(redis.call('HGET', KEYS[3], 'g') or '0')
local spent_h, spent_d = 0, 0
if hourly > 0 then
  spent_h = advance(KEYS[4], {HOUR_BUCKET_S}, {HOUR_BUCKETS})
  if spent_h + held_g + amount > hourly + EPS then
    return {{'hourly', ARGV[4], string.format('%.17g', spent_h), string.format('%.17g', held_g)}}
  end
end
if daily > 0 then
  spent_d = advance(KEYS[5], {DAY_BUCKET_S}, {DAY_BUCKETS})
  if spent_d + held_g + amount > daily + EPS then
    return {{'daily', ARGV[5], string.format('%.17g', spent_d), string.format('%.17g', held_g)}}
  end
end
if klimit > 0 then
  local spent = advance(KEYS[6], {DAY_BUCKET_S}, {DAY_BUCKETS})
  local held = tonumber(redis.call('HGET', KEYS[3], kscope) or '0')
  if spent + held + amount > klimit + EPS then
    return {{'key', ARGV[6], string.format('%.17g', spent), string.format('%.17g', held)}}
  end
end
if sscope ~= '' and slimit > 0 then
  local spent = advance(KEYS[7], {DAY_BUCKET_S}, {DAY_BUCKETS})
  local held = tonumber(redis.call('HGET', KEYS[3], sscope) or '0')
  if spent + held + amount > slimit + EPS then
    return {{'session', ARGV[7], string.format('%.17g', spent), string.format('%.17g', held)}}
  end
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2] .. '|' .. #kscope .. '|' .. kscope .. sscope)
redis.call('HINCRBYFLOAT', KEYS[3], 'g', amount)
redis.call('HINCRBYFLOAT', KEYS[3], kscope, amount)
if sscope ~= '' then redis.call('HINCRBYFLOAT', KEYS[3], sscope, amount) end
-- Which Redis this hold lives in: a settle tells "settled already" from "Redis lost its state" by it.
local epoch = redis.call('GET', KEYS[9])
if not epoch then
  epoch = ARGV[10]
  redis.call('SET', KEYS[9], epoch)
end
return {{'ok', string.format('%.17g', spent_h + held_g + amount), string.format('%.17g', spent_d + held_g + amount),
        epoch, redis.call('GET', KEYS[10]) or ''}}
end
"""
_RESERVE = _LIB + _RESERVE_FN + "return reserve()\n"

# The hold and the call's in-flight slot (with its first attempt's token) in one step: one round trip per call.
# KEYS: the reserve's 10, then aimd, slots, bucket, shared; ARGV: the reserve's 10, then lease_s, cfg_rps, cfg_slots,
# member. Returns the reserve's reply; when it is 'ok', followed by the slot reply (redis_limits' acquire).
_ADMIT = _LIB + ACQUIRE_LUA + _RESERVE_FN + """
local r = reserve()
if r[1] ~= 'ok' then return r end
local a = acquire(KEYS[11], KEYS[12], KEYS[13], KEYS[14], ARGV[11], ARGV[12], ARGV[13], '1', {ARGV[14]})
return {r[1], r[2], r[3], r[4], r[5], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8]}
"""

# KEYS: leases, res, held, hour_g, day_g, day_key, day_session, lapsed, epoch (and the stop version, unused)
# ARGV: id, actual, kscope, sscope, the hold's epoch
_SETTLE = _LIB + f"""
-- Idempotent, so a settle whose reply was lost can be sent again: its hold is still open (the first time),
-- or it lapsed before the settle came (count it: the call happened), or this Redis is not the one the hold
-- was taken in (it restarted empty: count it, the windows get it back), or it was settled already (nothing).
local actual = tonumber(ARGV[2])
if not close(KEYS[1], KEYS[2], KEYS[3], ARGV[1]) and redis.call('ZREM', KEYS[8], ARGV[1]) == 0
   and redis.call('GET', KEYS[9]) == ARGV[5] then
  actual = 0
end
local h, d, k, s = 0, 0, 0, 0
if actual > 0 then
  h = add(KEYS[4], {HOUR_BUCKET_S}, {HOUR_BUCKETS}, actual)
  d = add(KEYS[5], {DAY_BUCKET_S}, {DAY_BUCKETS}, actual)
  k = add(KEYS[6], {DAY_BUCKET_S}, {DAY_BUCKETS}, actual)
  if ARGV[4] ~= '' then s = add(KEYS[7], {DAY_BUCKET_S}, {DAY_BUCKETS}, actual) end
end
local held_g = tonumber(redis.call('HGET', KEYS[3], 'g') or '0')
return {{string.format('%.17g', h), string.format('%.17g', d), string.format('%.17g', k),
        string.format('%.17g', s), string.format('%.17g', held_g)}}
"""

# KEYS: leases; ARGV: lease_s, id...
_RENEW = """
local t = redis.call('TIME')
local until_ = tonumber(t[1]) + tonumber(t[2]) / 1000000 + tonumber(ARGV[1])
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], 'XX', until_, ARGV[i]) end
return #ARGV - 1
"""

# KEYS: leases, res, held, hour_g, day_g, lapsed; the cluster's totals for status and tests (expired holds dropped
# first).
_TOTALS = _LIB + f"""
drop_expired(KEYS[1], KEYS[2], KEYS[3], KEYS[6], nil)
local h = advance(KEYS[4], {HOUR_BUCKET_S}, {HOUR_BUCKETS})
local d = advance(KEYS[5], {DAY_BUCKET_S}, {DAY_BUCKETS})
local held_g = tonumber(redis.call('HGET', KEYS[3], 'g') or '0')
return {{string.format('%.17g', h), string.format('%.17g', d), string.format('%.17g', held_g),
        redis.call('ZCARD', KEYS[1]), redis.call('HLEN', KEYS[2])}}
"""


def _scope(name: str | None) -> str:
    return "" if name is None else "n:" + name


class RedisSpend:
    """``SpendState`` over Redis; see the module docstring for the model."""

    def __init__(self, link: RedisLink, ledger: Ledger) -> None:
        self.link = link
        self.ledger = ledger  # the budgets (config and sessions' budgets) and, on fallback, the per-process ledger
        self.local = LocalSpend(ledger)
        self._reserve = link.lua(_RESERVE)
        self._admit = link.lua(_ADMIT)
        self._settle = link.lua(_SETTLE)
        self._renew = link.lua(_RENEW)
        self._totals = link.lua(_TOTALS)
        self._leases, self._res, self._held = link.key("spend", "leases"), link.key("spend", "res"), link.key("spend", "held")
        self._hour_g, self._day_g = link.key("spend", "hour", "g"), link.key("spend", "day", "g")
        self._lapsed = link.key("spend", "lapsed")  # holds dropped at the end of their lease, for a day
        self._epoch_key = link.key("spend", "epoch")  # which Redis the windows live in (new if it restarts empty)
        self._epoch_candidate = os.urandom(8).hex()
        self._stop_ver = stop_version_key(link)
        self._epochs: dict[int, str] = {}             # hold id -> the epoch it was taken in, until its settle lands
        self._open: dict[int, Reservation] = {}      # holds in Redis, renewed by this process
        self._local_ids: set[int] = set()            # holds taken on the local ledger while Redis was down
        self._pending: list[tuple[Reservation, float]] = []  # settlements waiting for Redis
        self._share = 0.0
        self._fired: dict[str, float] = {}           # threshold marker -> until when this process knows it fired
        self._thresholds: list[float] | None = None  # the alert thresholds, sorted (from the config, once)
        self._renewer: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.refused = 0
        link.on_recovery(self.flush_pending)

    def _member(self, hold: Reservation) -> str:
        return f"{self.link.proc}:{hold.id}"

    def _keys(self, key: str, session: str | None) -> list[str]:
        day_s = self.link.key("spend", "day", _scope(session)) if session is not None else self._day_g
        return [self._leases, self._res, self._held, self._hour_g, self._day_g,
                self.link.key("spend", "day", _scope(key)), day_s, self._lapsed, self._epoch_key, self._stop_ver]

    # -- SpendState ------------------------------------------------------------------------
    async def reserve(self, key: str, amount_usd: float, session: str | None = None,
                      provider: str | None = None) -> Reservation:
        if session == key:
            session = None
        if not self.link.up and self.link.fallback:
            return self._reserve_local(key, amount_usd, session)
        amount = amount_usd if amount_usd > 0 else 0.0
        hold = Reservation(key=key, amount_usd=amount, session=session, created=time.time())
        budget = self.ledger.cfg.budget
        args = [self._member(hold), repr(amount), repr(self.link.cfg.lease_s), repr(budget.hourly_usd),
                repr(budget.daily_usd), repr(self.ledger.key_budget(key) or 0.0),
                repr((self.ledger.key_budget(session) or 0.0) if session else 0.0), _scope(key), _scope(session),
                self._epoch_candidate]
        keys = self._keys(key, session)
        lim: RedisLimit | None = self.link.limits.get(provider) if provider is not None else None
        part = lim.admit_part() if lim is not None else None
        script = self._reserve
        if part is not None:
            keys, args, script = keys + part[0], args + part[1] + [part[2]], self._admit
        asked_at = asyncio.get_running_loop().time()
        try:
            out = await self.link.eval(script, keys, args)
        except RedisDown:
            if self.link.fallback:
                return self._reserve_local(key, amount_usd, session)
            raise self.link.unavailable() from None
        except Exception as e:  # a Redis error about the command: refuse this call, never a traceback
            print(f"agentdeck: cluster reserve failed: {type(e).__name__}: {e}", file=sys.stderr)
            raise self.link.unavailable() from None
        verdict = out[0].decode()
        if verdict != "ok":
            await self._refuse(verdict, key, session, float(out[1]), float(out[2]), float(out[3]), amount)
        self._share = self._share_of(float(out[1]), float(out[2]))
        self._open[hold.id] = hold
        self._epochs[hold.id] = out[3].decode()
        if self.link.stop_seen is not None:
            self.link.stop_seen(out[4], asked_at)
        self._ensure_renewer()
        if part is not None and lim is not None:
            lim.admitted(part[2], out[5:])
        return hold

    async def settle(self, hold: Reservation, actual_usd: float) -> None:
        if not hold.open:
            return
        actual = max(0.0, float(actual_usd))
        if hold.id in self._local_ids:  # taken on the local ledger while Redis was down: it closes it
            self._local_ids.discard(hold.id)
            self.ledger.settle(hold, actual)
            return
        hold.open = False
        hold.actual_usd = actual
        self._open.pop(hold.id, None)
        drop_prefetched()  # a slot taken with the hold for a call that never went out goes back with it
        self._send_settle(hold, actual)

    async def release(self, hold: Reservation) -> None:
        if hold.id in self._local_ids and hold.open:
            self._local_ids.discard(hold.id)
            self.ledger.release(hold)
            return
        await self.settle(hold, 0.0)

    def share_used(self) -> float:
        """The fuller of the cluster's hourly and daily budgets, as of this process's last reserve (no round trip)."""
        if not self.link.up and self.link.fallback:
            return self.ledger.share_used()
        return self._share

    # -- reading ---------------------------------------------------------------------------
    async def totals(self) -> dict[str, Any]:
        """The cluster's spend and holds now (hour, day, reserved, open reservations)."""
        out = await self.link.eval(self._totals, [self._leases, self._res, self._held, self._hour_g, self._day_g,
                                                  self._lapsed], [])
        return {"hour_usd": float(out[0]), "day_usd": float(out[1]), "reserved_usd": max(0.0, float(out[2])),
                "open_reservations": int(out[3]), "reservation_rows": int(out[4])}

    @property
    def pending_settlements(self) -> int:
        return len(self._pending)

    # -- internals -------------------------------------------------------------------------
    def _reserve_local(self, key: str, amount_usd: float, session: str | None) -> Reservation:
        hold = self.ledger.reserve(key, amount_usd, session=session)
        self._local_ids.add(hold.id)
        return hold

    def _send_settle(self, hold: Reservation, actual: float) -> None:
        """Send the settle without waiting for it (off the caller's path).

        It is never lost: the hold keeps counting at its worst case until the settle lands, a settle
        that fails for Redis being down is queued and written when Redis is back, and closing the link
        waits for the settles already sent.
        """
        fut = self.link.eval_soon(self._settle, self._keys(hold.key, hold.session),
                                  self._settle_args(hold, actual))
        if fut is None:
            self._pending.append((hold, actual))
            return
        fut.add_done_callback(lambda f: self._settled(hold, actual, f))

    def _settle_args(self, hold: Reservation, actual: float) -> list[str]:
        return [self._member(hold), repr(actual), _scope(hold.key), _scope(hold.session), self._epochs.get(hold.id, "")]

    def _settled(self, hold: Reservation, actual: float, fut: "asyncio.Future[Any]") -> None:
        err = asyncio.CancelledError() if fut.cancelled() else fut.exception()
        if err is None:
            self._epochs.pop(hold.id, None)
            out = fut.result()
            if actual > 0:
                self._after_settle(hold, float(out[0]), float(out[1]), float(out[2]), float(out[3]), float(out[4]))
            return
        if self.link.failed(err):
            self._pending.append((hold, actual))  # the link is down now; its recovery writes these
            return
        # not "down" (e.g. Redis forgot the script): write it again the careful way, never lose the spend
        self._spawn(self._write_settle(hold, actual))

    async def _write_settle(self, hold: Reservation, actual: float) -> None:
        try:
            out = await self.link.eval(self._settle, self._keys(hold.key, hold.session),
                                       self._settle_args(hold, actual))
        except RedisDown:
            self._pending.append((hold, actual))
            return
        except Exception as e:  # not "down": keep it for the next flush rather than lose spend
            print(f"agentdeck: cluster settle failed: {type(e).__name__}: {e}", file=sys.stderr)
            self._pending.append((hold, actual))
            return
        self._epochs.pop(hold.id, None)
        if actual > 0:
            self._after_settle(hold, float(out[0]), float(out[1]), float(out[2]), float(out[3]), float(out[4]))

    async def flush_pending(self) -> None:
        """Write the settlements queued while Redis was down (the link runs this when Redis is back)."""
        while self._pending:
            hold, actual = self._pending.pop(0)
            try:
                out = await self.link.eval(self._settle, self._keys(hold.key, hold.session),
                                           self._settle_args(hold, actual))
            except RedisDown:
                self._pending.insert(0, (hold, actual))
                raise
            self._epochs.pop(hold.id, None)
            if actual > 0:
                self._after_settle(hold, float(out[0]), float(out[1]), float(out[2]), float(out[3]), float(out[4]))

    def _ensure_renewer(self) -> None:
        if self._renewer is None or self._renewer.done():
            self._renewer = asyncio.get_running_loop().create_task(self._renew_leases(), name="cluster-lease-renew")

    async def _renew_leases(self) -> None:
        """Keep this process's holds alive; a process that dies stops, and its holds expire after the lease."""
        every = max(0.05, self.link.cfg.lease_s / 3.0)
        while True:
            await asyncio.sleep(every)
            ids = [self._member(h) for h in list(self._open.values()) if h.open]
            if not ids or not self.link.up:
                continue
            try:
                for i in range(0, len(ids), 500):
                    await self.link.eval(self._renew, [self._leases], [repr(self.link.cfg.lease_s), *ids[i:i + 500]])
            except RedisDown:
                continue
            except Exception as e:
                print(f"agentdeck: cluster lease renewal failed: {type(e).__name__}: {e}", file=sys.stderr)

    def _share_of(self, hour_used: float, day_used: float) -> float:
        budget = self.ledger.cfg.budget
        share = 0.0
        if budget.hourly_usd > 0:
            share = max(share, hour_used / budget.hourly_usd)
        if budget.daily_usd > 0:
            share = max(share, day_used / budget.daily_usd)
        return share

    async def _refuse(self, which: str, key: str, session: str | None, limit: float, spent: float, held: float,
                      amount: float) -> None:
        """Raise BudgetExceeded with when room frees up (one more read: only refused calls pay it)."""
        self.refused += 1
        name = {"hourly": "hourly", "daily": "daily", "key": f"key:{key}", "session": f"session:{session}"}[which]
        window = self._hour_g if which == "hourly" else self._day_g if which == "daily" else \
            self.link.key("spend", "day", _scope(key if which == "key" else session))
        bucket_s = HOUR_BUCKET_S if which == "hourly" else DAY_BUCKET_S
        n = HOUR_BUCKETS if which == "hourly" else DAY_BUCKETS
        now = time.time()
        resets_at = now
        try:
            raw = await self.link.run(self.link.client.hgetall(window))
            buckets = sorted((int(f), float(v)) for f, v in raw.items() if f not in (b"t", b"c"))
            need, freed = spent + held + amount - limit, 0.0
            for b, dollars in buckets:
                if dollars <= 0:
                    continue
                resets_at = (b + n) * bucket_s
                freed += dollars
                if freed + 1e-12 >= need:
                    break
        except RedisDown:
            pass
        if spent + amount > limit + 1e-12 and spent >= limit * REACHED_SHARE:
            self._reached(name, limit, spent, f"a call needing up to {usd(amount)} was refused")
        raise BudgetExceeded(name, limit, spent, held, amount, max(resets_at, now), now)

    def _after_settle(self, hold: Reservation, hour: float, day: float, key_day: float, session_day: float,
                      held_g: float) -> None:
        """Threshold alerts on the cluster's totals; each fires once per cluster (a marker in Redis)."""
        budget = self.ledger.cfg.budget
        self._share = self._share_of(hour + held_g, day + held_g)
        checks = [("hourly", budget.hourly_usd, hour, HOUR_S), ("daily", budget.daily_usd, day, DAY_S)]
        klimit = self.ledger.key_budget(hold.key)
        if klimit:
            checks.append((f"key:{hold.key}", klimit, key_day, DAY_S))
        slimit = self.ledger.key_budget(hold.session) if hold.session else None
        if slimit:
            checks.append((f"session:{hold.session}", slimit, session_day, DAY_S))
        thresholds = self._thresholds
        if thresholds is None:
            thresholds = self._thresholds = sorted({t for t in budget.alert_thresholds if 0 < t <= 1.0} | {1.0})
        lowest = thresholds[0]
        now = time.time()
        for name, limit, spent, span in checks:
            if limit <= 0 or spent / limit + 1e-12 < lowest:
                continue  # the common case: below every threshold
            crossed = [t for t in thresholds if spent / limit + 1e-12 >= t]
            if not crossed:
                continue
            top = max(crossed)
            marker = f"{name}:{top}"
            if self._fired.get(marker, 0.0) > now:
                continue
            self._fired[marker] = now + span
            self._spawn(self._fire_once(name, top, limit, spent, span))

    def _reached(self, name: str, limit: float, spent: float, why: str) -> None:
        marker = f"{name}:1.0"
        now = time.time()
        if self._fired.get(marker, 0.0) > now:
            return
        span = HOUR_S if name == "hourly" else DAY_S
        self._fired[marker] = now + span
        self._spawn(self._fire_once(name, 1.0, limit, spent, span, why))

    async def _fire_once(self, name: str, threshold: float, limit: float, spent: float, span: float,
                         why: str = "") -> None:
        """Alert (and for the daily budget, stop) unless another process of the cluster already did."""
        try:
            first = await self.link.run(self.link.client.set(
                self.link.key("spend", "fired", name, str(threshold)), self.link.proc, nx=True, ex=int(span)))
        except RedisDown:
            first = True  # say it rather than stay silent
        if not first:
            return
        pct = int(round(threshold * 100))
        severity = "P0" if threshold >= 1.0 else "P1" if threshold >= 0.8 else "P2"
        scope = name.split(":", 1)[1] if ":" in name else None
        label = name.split(":", 1)[0]
        if threshold >= 1.0:
            text = f"cluster {name} budget {usd(limit)} reached ({usd(spent)} spent)"
            text += f"; {why}" if why else "; new calls are refused until spend ages out of the window"
        else:
            text = f"cluster {name} budget: {pct}% used ({usd(spent)} of {usd(limit)})"
        self.ledger.bus.publish(Alert(severity=severity, kind=f"budget-{label}-{pct}", message=text, key=scope))
        hook = self.ledger.on_daily_exhausted
        if threshold >= 1.0 and name == "daily" and self.ledger.cfg.budget.auto_stop_when_daily_spent and hook:
            res = hook(f"daily budget {usd(limit)} reached ({usd(spent)} spent across the cluster in the last 24 h)")
            if inspect.isawaitable(res):
                await res

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        if self._renewer is not None:
            self._renewer.cancel()
        for t in list(self._tasks):
            t.cancel()


__all__ = ["RedisSpend"]
