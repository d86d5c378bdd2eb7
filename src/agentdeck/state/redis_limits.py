"""One limit per provider across the cluster: leased slots, one token bucket, shared AIMD numbers.

Why in Redis and not per process: N processes each holding the configured limit hit the
provider N times harder than AIMD intends. Here each provider has, in Redis:

- ``aimd``: the current requests/s and slots, when they were last cut or raised and when
  the last 429 came. A 429 seen by any process cuts them once per congestion window (a 429
  for an attempt sent before the last cut is old news and ignored); after
  ``increase_every_s`` without one, the next success raises them. Same rule as
  :class:`~agentdeck.limits.aimd.AimdController`, as one atomic script.
- ``slots``: a distributed semaphore, holder -> lease expiry. A holder is one call's slot;
  its process renews the lease while the call runs, so the slots of a killed process come
  back after the lease. Waiters queue in their own process (FIFO) and one task per provider
  asks Redis for as many slots as are waiting; a release publishes on ``freed`` so waiting
  processes ask again at once (and every 50 ms in any case: a lost message only costs time).
- ``bucket``: one token bucket. A pace takes a token and, when there is none, the time at
  which its token will be there (the balance goes negative), so the cluster's attempts are
  spaced at the shared rate with one round trip and no polling.

- ``shared``: what is not AIMD's: the circuit breaker's ``open_until`` (redis_breaker: one
  process opens it, all follow at their next slot request, which reads it in the same
  script) and what the provider's rate-limit headers last said (no attempt before
  ``hold_until``; attempts spaced ``interval`` apart until ``hdr_until``), which the bucket
  honours when it hands out a token.

After a cut each process keeps one timer while the shared limits are below their start, so
they climb back with no traffic (the script raises once per ``increase_every_s`` for the
cluster). While Redis is down a call uses this process's own limiter.
"""

from __future__ import annotations

import asyncio
import itertools
import sys
import time
from collections import deque
from contextvars import ContextVar
from typing import Any, Mapping

from agentdeck.bus import Bus, LimitChanged, ProviderThrottled
from agentdeck.limits import ProviderLimiter, Throttled, parse_rate_limit_headers
from agentdeck.limits.limiter import HEADER_LOW_WATER
from agentdeck.state.redis_breaker import SharedBreaker
from agentdeck.state.redis_link import RedisDown, RedisLink

_POLL_S = 0.05
_MAX_HEADER_HOLD_S = 60.0  # as the local limiter: a provider's reset further out is not waited for whole

# The clock every script starts with (Redis's own: processes whose clocks disagree share one bucket).
CLOCK_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
"""

# The AIMD hash, created from this process's config if absent.
_AIMD_FN = """
local function aimd(k, rps, slots)
  local v = redis.call('HMGET', k, 'rps', 'slots', 'change_at', 'cut_at', 'cong_at')
  if not v[1] then
    redis.call('HSET', k, 'rps', rps, 'slots', slots, 'change_at', string.format('%.17g', now), 'cut_at', '-1',
               'cong_at', '-1')
    return tonumber(rps), tonumber(slots), now, -1, -1
  end
  return tonumber(v[1]), tonumber(v[2]), tonumber(v[3]), tonumber(v[4]), tonumber(v[5])
end
"""

# The provider's shared hash (see ``RedisLimit``): its breaker and what its rate-limit headers said.
_SHARED_FN = """
local function shared_state(k)
  return redis.call('HMGET', k, 'hold_until', 'interval', 'hdr_until', 'next_at', 'open_until')
end
"""

# Take one token from the bucket; when there is none, the wait until it is there (the balance goes negative).
# Then the provider's rate-limit headers as any process last saw them (``h``, the shared hash read by the
# caller): no attempt before hold_until (its remainder was spent), and while hdr_until is ahead attempts are
# spaced ``interval`` apart.
_TAKE_FN = """
local function take(bucket, rps, shared, h)
  local cap = math.max(1, rps)
  local v = redis.call('HMGET', bucket, 'tokens', 'ts')
  local tokens, ts = tonumber(v[1] or '1'), tonumber(v[2] or tostring(now))
  tokens = math.min(cap, tokens + (now - ts) * rps) - 1
  redis.call('HSET', bucket, 'tokens', string.format('%.17g', tokens), 'ts', string.format('%.17g', now))
  if not v[2] or math.floor(now / 600) ~= math.floor(ts / 600) then redis.call('EXPIRE', bucket, 3600) end
  local wait = 0
  if tokens < 0 then wait = -tokens / rps end
  if h[1] or h[2] then
    local at = now + wait
    local hold, iv, hu, nx = tonumber(h[1] or '0'), tonumber(h[2] or '0'), tonumber(h[3] or '0'), tonumber(h[4] or '0')
    if hold > at then at = hold end
    if iv > 0 and at < hu then
      if nx > at then at = nx end
      redis.call('HSET', shared, 'next_at', string.format('%.17g', at + iv))
    end
    wait = at - now
  end
  return wait
end
"""

# Slots for ``members`` (as many as are free) and, for a single one with pace '1', its first attempt's token.
# Returns {granted, rps, slots, in use, wait_s ('-1': no token taken), sent_at, breaker open_until, now}.
_ACQUIRE_FN = """
local function acquire(ka, ks, kb, ksh, lease, cfg_rps, cfg_slots, pace, members)
  local rps, slots = aimd(ka, cfg_rps, cfg_slots)
  redis.call('ZREMRANGEBYSCORE', ks, '-inf', now)
  local used = redis.call('ZCARD', ks)
  local granted = 0
  for i = 1, #members do
    if used + granted >= slots then break end
    redis.call('ZADD', ks, now + tonumber(lease), members[i])
    granted = granted + 1
  end
  local wait = -1
  local h = shared_state(ksh)
  if pace == '1' and granted == 1 then wait = take(kb, rps, ksh, h) end
  return {granted, tostring(rps), slots, used + granted, string.format('%.17g', wait),
          string.format('%.17g', now + math.max(wait, 0)), h[5] or '0', string.format('%.17g', now)}
end
"""

#: The slot step as Lua functions (after ``CLOCK_LUA``), for a script that takes a slot as part of a larger step.
ACQUIRE_LUA = _AIMD_FN + _SHARED_FN + _TAKE_FN + _ACQUIRE_FN

_LIB = CLOCK_LUA + _AIMD_FN
_TAKE = _SHARED_FN + _TAKE_FN

# KEYS: aimd, slots, bucket, shared; ARGV: lease_s, cfg_rps, cfg_slots, pace ('1': also take the first attempt's
# token), member...
_ACQUIRE = CLOCK_LUA + ACQUIRE_LUA + """
local members = {}
for i = 5, #ARGV do members[#members + 1] = ARGV[i] end
return acquire(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[1], ARGV[2], ARGV[3], ARGV[4], members)
"""

# KEYS: slots; ARGV: channel, member
_RELEASE = """
if redis.call('ZREM', KEYS[1], ARGV[2]) == 1 then redis.call('PUBLISH', ARGV[1], '1') end
return 1
"""

# KEYS: slots; ARGV: lease_s, member...
_RENEW = """
local t = redis.call('TIME')
local until_ = tonumber(t[1]) + tonumber(t[2]) / 1000000 + tonumber(ARGV[1])
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], 'XX', until_, ARGV[i]) end
return 1
"""

# KEYS: aimd, bucket, shared; ARGV: cfg_rps, cfg_slots. Returns {wait_s, sent_at, rps, breaker open_until, now}.
_PACE = _LIB + _TAKE + """
local rps = aimd(KEYS[1], ARGV[1], ARGV[2])
local h = shared_state(KEYS[3])
local wait = take(KEYS[2], rps, KEYS[3], h)
return {string.format('%.17g', wait), string.format('%.17g', now + wait), tostring(rps), h[5] or '0',
        string.format('%.17g', now)}
"""

# The circuit breaker's shared state. KEYS: shared; ARGV: open_for_s ('0': closed). Returns open_until.
_BREAKER = CLOCK_LUA + """
local open_for = tonumber(ARGV[1])
local until_ = '0'
if open_for > 0 then until_ = string.format('%.17g', now + open_for) end
redis.call('HSET', KEYS[1], 'open_until', until_)
redis.call('EXPIRE', KEYS[1], 3600)
return until_
"""

# What a provider's rate-limit headers say, for every process's pacing (the same rule as ProviderLimiter's).
# KEYS: shared; ARGV: remaining, reset_s, low_water.
_HEADERS = CLOCK_LUA + """
local rem, reset, low = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local hold = tonumber(redis.call('HGET', KEYS[1], 'hold_until') or '0')
local function f(x) return string.format('%.17g', x) end
if rem <= 0 then
  redis.call('HSET', KEYS[1], 'hold_until', f(math.max(hold, now + reset)), 'interval', '0', 'hdr_until', f(now + reset))
elseif rem <= low then
  redis.call('HSET', KEYS[1], 'interval', f(reset / rem), 'hdr_until', f(now + reset))
else
  if hold > now then hold = now end
  redis.call('HSET', KEYS[1], 'hold_until', f(hold), 'interval', '0', 'hdr_until', '0')
end
redis.call('EXPIRE', KEYS[1], 3600)
return 1
"""

# KEYS: aimd, bucket; ARGV: cfg_rps, cfg_slots, sent_at ('' unknown), window_s, decrease, min_rps, min_slots
_CONGESTION = _LIB + """
local rps, slots, change_at, cut_at = aimd(KEYS[1], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[1], 'cong_at', now)
if now - cut_at < tonumber(ARGV[4]) - 1e-9 then return {0, tostring(rps), slots} end
if ARGV[3] ~= '' and tonumber(ARGV[3]) < cut_at then return {0, tostring(rps), slots} end
local d = tonumber(ARGV[5])
rps = math.max(tonumber(ARGV[6]), math.floor(rps * d * 1000000 + 0.5) / 1000000)
slots = math.max(tonumber(ARGV[7]), math.floor(slots * d + 1e-9))
redis.call('HSET', KEYS[1], 'rps', string.format('%.17g', rps), 'slots', slots, 'cut_at', now, 'change_at', now)
local tokens = tonumber(redis.call('HGET', KEYS[2], 'tokens') or '0')
if tokens > 0 then redis.call('HSET', KEYS[2], 'tokens', '0', 'ts', string.format('%.17g', now)) end
return {1, tostring(rps), slots}
"""

# KEYS: aimd; ARGV: cfg_rps, cfg_slots, increase, every_s, top_rps, top_slots. Returns {raised, rps, slots, due_in_s}.
_INCREASE = _LIB + """
local rps, slots, change_at, cut_at, cong_at = aimd(KEYS[1], ARGV[1], ARGV[2])
local every = tonumber(ARGV[4])
local due = math.max(change_at, cong_at) + every
if now + 1e-9 < due then return {0, tostring(rps), slots, string.format('%.17g', due - now)} end
local inc, top_rps, top_slots = tonumber(ARGV[3]), tonumber(ARGV[5]), tonumber(ARGV[6])
local new_rps, new_slots = rps, slots
if rps < top_rps then new_rps = math.min(top_rps, math.floor((rps + inc) * 1000000 + 0.5) / 1000000) end
if slots < top_slots then new_slots = math.min(top_slots, slots + math.floor(inc + 0.5)) end
if new_rps == rps and new_slots == slots then return {0, tostring(rps), slots, tostring(every)} end
redis.call('HSET', KEYS[1], 'rps', string.format('%.17g', new_rps), 'slots', new_slots, 'change_at', now)
return {1, tostring(new_rps), new_slots, tostring(every)}
"""

# (limiter, Redis time its current attempt was paced at) for the task running it, as the local limiter does.
_SENT: ContextVar[tuple[object, float] | None] = ContextVar("agentdeck_cluster_attempt", default=None)
# (limiter, wait, sent_at) of the token the slot request already took for the call's first attempt.
_PREPAID: ContextVar[tuple[object, float, float] | None] = ContextVar("agentdeck_cluster_prepaid", default=None)
# (limiter, member, wait, sent_at) of a slot the call's budget hold took with it (one script), not yet entered.
_PREFETCHED: ContextVar[tuple["RedisLimit", str, float, float] | None] = ContextVar("agentdeck_cluster_prefetched",
                                                                                     default=None)


class _Scripts:
    """The limit scripts, registered once per client."""

    def __init__(self, link: RedisLink) -> None:
        self.acquire = link.lua(_ACQUIRE)
        self.release = link.lua(_RELEASE)
        self.renew = link.lua(_RENEW)
        self.pace = link.lua(_PACE)
        self.congestion = link.lua(_CONGESTION)
        self.increase = link.lua(_INCREASE)
        self.breaker = link.lua(_BREAKER)
        self.headers = link.lua(_HEADERS)


class _ClusterSlot:
    """``async with limit.slot():`` one cluster-wide slot for the whole call (this process's slot while Redis is down)."""

    __slots__ = ("_lim", "_member", "_local")

    def __init__(self, lim: "RedisLimit") -> None:
        self._lim = lim
        self._member: str | None = None
        self._local: Any = None

    async def __aenter__(self) -> None:
        lim = self._lim
        if not lim.enabled:
            return
        pre = _PREFETCHED.get()
        if pre is not None and pre[0] is lim:  # the budget hold took this call's slot and first token already
            _PREFETCHED.set(None)
            self._member = pre[1]
            _PREPAID.set((lim, pre[2], pre[3]))
            return
        if lim.link.up:
            try:
                self._member = await lim._acquire()
                return
            except RedisDown:
                pass
        self._local = lim.local.slot()  # calls in flight finish on this process's own limiter
        await self._local.__aenter__()

    async def __aexit__(self, et: object, ev: object, tb: object) -> bool:
        if self._member is not None:
            member, self._member = self._member, None
            lim = self._lim
            lim._release(member)  # off the caller's path: until it lands the slot only looks taken
        elif self._local is not None:
            local, self._local = self._local, None
            await local.__aexit__(et, ev, tb)
        return False


class RedisLimit:
    """``LimitState`` of one provider shared by the cluster; see the module docstring."""

    def __init__(self, link: RedisLink, scripts: _Scripts, local: ProviderLimiter, bus: Bus,
                 freed: "ClusterFreed") -> None:
        self.link = link
        self.local = local
        self.bus = bus
        self.name = local.name
        self.cfg = local.cfg
        self.breaker = SharedBreaker(self, local.breaker.cfg, local.breaker.on_change)
        self.enabled = local.cfg.enabled
        self._s = scripts
        self._freed = freed
        base = link.key("lim", local.name)
        self._aimd, self._slots, self._bucket = base + ":aimd", base + ":slots", base + ":bucket"
        self._shared = base + ":shared"  # the breaker and what the rate-limit headers said, for every process
        self._hdr_active = False  # the last headers this process shared held or spaced the cluster
        self._recovery: asyncio.TimerHandle | None = None
        self.channel = base + ":freed"
        self._seq = itertools.count(1)
        self._held: set[str] = set()
        self._waiters: deque[tuple[float, asyncio.Future[str | None]]] = deque()
        self._pump: asyncio.Task[None] | None = None
        self._renewer: asyncio.Task[None] | None = None
        self._increasing: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.rps: float = local.rps_limit
        self.slots: int = local.slots_limit
        self.cluster_in_flight = 0
        self._increase_due = time.monotonic() + local.cfg.increase_every_s
        self._last_throttled_pub = -1e18
        self.rate_limited_total = 0
        self.throttled_total = 0
        self.cuts = 0

    def _cfg_args(self) -> list[str]:
        start = self.local.aimd
        return [repr(start.start_rps), str(start.start_slots)]

    # -- slots -------------------------------------------------------------------------------
    def slot(self) -> _ClusterSlot:
        return _ClusterSlot(self)

    async def _acquire(self) -> str:
        if not self._waiters:  # nobody ahead in this process: try at once
            member = self._new_member()
            out = await self.link.eval(self._s.acquire, [self._aimd, self._slots, self._bucket, self._shared],
                                       [repr(self.link.cfg.lease_s), *self._cfg_args(), "1", member])
            self._learn(float(out[1]), int(out[2]), "cluster")
            self.breaker.mirror(float(out[6]), float(out[7]))
            self.cluster_in_flight = int(out[3])
            if int(out[0]) == 1:
                self._hold(member)
                _PREPAID.set((self, float(out[4]), float(out[5])))
                return member
        wait_s = self.cfg.max_queue_wait_s
        if wait_s <= 0:
            self.throttled_total += 1
            raise Throttled(1.0, self.name)
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[str | None] = loop.create_future()
        self._waiters.append((loop.time() + wait_s, fut))
        if self._pump is None or self._pump.done():
            self._pump = loop.create_task(self._grant_waiters(), name=f"cluster-slots-{self.name}")
        self._freed.follow(self)
        try:
            member = await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled() and isinstance(fut.result(), str):
                self._release(fut.result())  # handed over just as we were cancelled: give it back
            raise
        if member is None:
            if not self.link.up:
                raise RedisDown(self.link.last_error)
            self.throttled_total += 1
            raise Throttled(max(1.0, wait_s), self.name)
        return member

    async def _grant_waiters(self) -> None:
        """Ask Redis for as many slots as this process has waiters, oldest first; wait for a release between tries."""
        loop = asyncio.get_running_loop()
        while self._waiters:
            now = loop.time()
            while self._waiters and (self._waiters[0][1].done() or self._waiters[0][0] <= now):
                _, fut = self._waiters.popleft()
                if not fut.done():
                    fut.set_result(None)  # no slot within max_queue_wait_s
            if not self._waiters:
                return
            members = [self._new_member() for _ in range(min(len(self._waiters), 256))]
            try:
                out = await self.link.eval(self._s.acquire, [self._aimd, self._slots, self._bucket, self._shared],
                                           [repr(self.link.cfg.lease_s), *self._cfg_args(), "0", *members])
            except RedisDown:
                while self._waiters:
                    _, fut = self._waiters.popleft()
                    if not fut.done():
                        fut.set_result(None)
                return
            except Exception as e:
                print(f"agentdeck: cluster slot request failed: {type(e).__name__}: {e}", file=sys.stderr)
                await asyncio.sleep(_POLL_S)
                continue
            self._learn(float(out[1]), int(out[2]), "cluster")
            self.breaker.mirror(float(out[6]), float(out[7]))
            self.cluster_in_flight = int(out[3])
            granted = members[:int(out[0])]
            for member in granted:
                handed = False
                while self._waiters and not handed:
                    _, fut = self._waiters.popleft()
                    if not fut.done():
                        self._hold(member)
                        fut.set_result(member)
                        handed = True
                if not handed:
                    self._release(member)
            if self._waiters:
                await self._freed.wait(self, _POLL_S)

    def _new_member(self) -> str:
        return f"{self.link.proc}:{next(self._seq)}"

    def _hold(self, member: str) -> None:
        self._held.add(member)
        if self._renewer is None or self._renewer.done():
            self._renewer = asyncio.get_running_loop().create_task(self._renew(), name=f"cluster-slot-lease-{self.name}")

    def _release(self, member: str) -> None:
        """Give a slot back without waiting for Redis (if the release is lost, the slot's lease frees it)."""
        self._held.discard(member)
        self._freed.poke(self)
        fut = self.link.eval_soon(self._s.release, [self._slots], [self.channel, member])
        if fut is not None:
            fut.add_done_callback(self._released)

    def _released(self, fut: "asyncio.Future[Any]") -> None:
        if fut.cancelled():
            return
        err = fut.exception()
        if err is not None and not self.link.failed(err):
            print(f"agentdeck: cluster slot release failed: {type(err).__name__}: {err}", file=sys.stderr)

    # -- the slot a budget hold takes along ---------------------------------------------------
    def admit_part(self) -> tuple[list[str], list[str], str] | None:
        """Keys, args and member for taking this call's slot in the budget hold's own script; None to take it later."""
        if not self.enabled or self._waiters or not self.link.up:
            return None  # FIFO: behind this process's waiters, the call queues like any other
        member = self._new_member()
        return ([self._aimd, self._slots, self._bucket, self._shared], [repr(self.link.cfg.lease_s), *self._cfg_args()],
                member)

    def admitted(self, member: str, out: Any) -> None:
        """The reply of the slot part (``acquire``'s); a granted slot waits in the call's context for ``slot()``."""
        self._learn(float(out[1]), int(out[2]), "cluster")
        self.breaker.mirror(float(out[6]), float(out[7]))
        self.cluster_in_flight = int(out[3])
        if int(out[0]) != 1:
            return
        self._hold(member)
        drop_prefetched()  # never two: a slot taken earlier and not entered goes back first
        _PREFETCHED.set((self, member, float(out[4]), float(out[5])))

    async def _renew(self) -> None:
        every = max(0.05, self.link.cfg.lease_s / 3.0)
        while True:
            await asyncio.sleep(every)
            held = list(self._held)
            if not held or not self.link.up:
                continue
            try:
                for i in range(0, len(held), 500):
                    await self.link.eval(self._s.renew, [self._slots], [repr(self.link.cfg.lease_s), *held[i:i + 500]])
            except RedisDown:
                continue
            except Exception as e:
                print(f"agentdeck: cluster slot renewal failed: {type(e).__name__}: {e}", file=sys.stderr)

    # -- pacing ------------------------------------------------------------------------------
    async def pace(self) -> None:
        if not self.enabled:
            return
        prepaid = _PREPAID.get()
        if prepaid is not None and prepaid[0] is self:  # the slot request took this attempt's token
            _PREPAID.set(None)
            _SENT.set((self, prepaid[2]))
            if prepaid[1] > 0:
                await asyncio.sleep(prepaid[1])
            return
        if self.link.up:
            try:
                out = await self.link.eval(self._s.pace, [self._aimd, self._bucket, self._shared], self._cfg_args())
            except RedisDown:
                out = None
            if out is not None:
                wait = float(out[0])
                _SENT.set((self, float(out[1])))
                self.breaker.mirror(float(out[3]), float(out[4]))
                if wait > 0:
                    await asyncio.sleep(wait)
                return
        await self.local.pace()

    # -- feedback ----------------------------------------------------------------------------
    def observe(self, status: int, headers: Mapping[str, str] | None = None) -> None:
        if status == 429 or status == 529:
            self.rate_limited_total += 1
            now = time.monotonic()
            if now - self._last_throttled_pub >= self.cfg.congestion_window_s:
                self._last_throttled_pub = now
                self.bus.publish(ProviderThrottled(provider=self.name, status=status))
            att = _SENT.get()
            sent_at = att[1] if att is not None and att[0] is self else None
            self._spawn(self._congestion(sent_at))
        elif time.monotonic() >= self._increase_due and (self._increasing is None or self._increasing.done()):
            self._increasing = self._spawn(self._increase())
        if headers:
            self._observe_headers(headers)

    def _observe_headers(self, headers: Mapping[str, str]) -> None:
        """Share what the provider's rate-limit headers say when they ask to slow down (or stop asking).

        A roomy answer while nothing is held costs nothing (no Redis command): the common case.
        """
        wall = time.time()
        info = parse_rate_limit_headers(headers, wall)
        if info is None:
            return
        info["updated_at"] = wall
        self.local.advertised = info
        remaining, reset_s = info["remaining_requests"], info["reset_requests_s"]
        if remaining is None or reset_s is None:
            return
        low_water = max(1.0, (info["limit_requests"] or 0) * HEADER_LOW_WATER)
        tight = remaining <= low_water
        if not tight and not self._hdr_active:
            return
        self._hdr_active = tight
        fut = self.link.eval_soon(self._s.headers, [self._shared],
                                  [str(remaining), repr(min(reset_s, _MAX_HEADER_HOLD_S)), repr(low_water)])
        if fut is not None:
            fut.add_done_callback(self._headers_shared)

    def _headers_shared(self, fut: "asyncio.Future[Any]") -> None:
        """A lost write only costs pacing precision: say so on stderr unless Redis is down (the link says that)."""
        if fut.cancelled():
            return
        err = fut.exception()
        if err is not None and not self.link.failed(err):
            print(f"agentdeck: cluster rate-limit headers update failed: {type(err).__name__}: {err}", file=sys.stderr)

    # -- the circuit breaker, shared ---------------------------------------------------------
    def share_breaker(self, open_for_s: float) -> None:
        """This process's breaker opened (or closed): every process's follows at its next call."""
        fut = self.link.eval_soon(self._s.breaker, [self._shared], [repr(open_for_s)])
        if fut is not None:
            self.breaker.writing += 1
            fut.add_done_callback(self._breaker_shared)

    def _breaker_shared(self, fut: "asyncio.Future[Any]") -> None:
        if fut.cancelled():
            self.breaker.written(None)
            return
        err = fut.exception()
        self.breaker.written(None if err is not None else float(fut.result()))
        if err is not None and not self.link.failed(err):
            print(f"agentdeck: cluster breaker update failed: {type(err).__name__}: {err}", file=sys.stderr)

    async def _congestion(self, sent_at: float | None) -> None:
        c = self.cfg
        try:
            out = await self.link.eval(self._s.congestion, [self._aimd, self._bucket],
                                       [*self._cfg_args(), "" if sent_at is None else repr(sent_at),
                                        repr(c.congestion_window_s), repr(c.decrease), repr(c.min_rps), str(c.min_slots)])
        except RedisDown:
            return
        self._increase_due = time.monotonic() + c.increase_every_s
        if int(out[0]) == 1:
            self.cuts += 1
        self._learn(float(out[1]), int(out[2]), "congestion")

    async def _increase(self, idle: bool = False) -> float:
        """One additive increase if due (the script decides, for the whole cluster); returns the seconds until the next.

        ``idle``: from the recovery timer, so only back up to the configured start (as one process does).
        """
        c = self.cfg
        a = self.local.aimd
        top_rps, top_slots = (min(a.start_rps, c.max_rps), min(a.start_slots, c.max_slots)) if idle else \
            (c.max_rps, c.max_slots)
        try:
            out = await self.link.eval(self._s.increase, [self._aimd],
                                       [*self._cfg_args(), repr(c.increase), repr(c.increase_every_s),
                                        repr(top_rps), str(top_slots)])
        except RedisDown:
            return c.increase_every_s
        self._increase_due = time.monotonic() + float(out[3])
        self._learn(float(out[1]), int(out[2]), "recovery")
        return float(out[3])

    def _learn(self, rps: float, slots: int, reason: str) -> None:
        """Take the cluster's numbers; tell the bus when they moved."""
        if rps == self.rps and slots == self.slots:
            return
        self.rps, self.slots = rps, slots
        self.bus.publish(LimitChanged(provider=self.name, rps_limit=rps, slots_limit=slots, reason=reason))
        a = self.local.aimd
        if self._recovery is None and (rps < a.start_rps or slots < a.start_slots):
            self._arm_recovery(self.cfg.increase_every_s)

    def _arm_recovery(self, delay: float) -> None:
        """One timer per process while the shared limits are below their start, so that they climb back even
        with no traffic (every process's timer asks; the script raises once per ``increase_every_s``)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._recovery = loop.call_later(max(0.01, delay), self._recovery_due)

    def _recovery_due(self) -> None:
        self._spawn(self._recover_idle())

    async def _recover_idle(self) -> None:
        next_in = self.cfg.increase_every_s
        try:
            next_in = await self._increase(idle=True)
        finally:
            self._recovery = None
        a = self.local.aimd
        if self.rps < a.start_rps or self.slots < a.start_slots:
            self._arm_recovery(next_in)

    def snapshot(self) -> dict[str, Any]:
        snap = self.local.snapshot()
        snap.update(breaker=self.breaker.state, header_paced=self._hdr_active, rps_limit=self.rps, slots_limit=self.slots, in_flight=len(self._held) + self.local.in_flight,
                    queued=len(self._waiters), rate_limited_total=self.rate_limited_total,
                    throttled_total=self.throttled_total + self.local.throttled_total,
                    cluster_in_flight=self.cluster_in_flight, shared=True)
        return snap

    # -- properties the gateway reads ---------------------------------------------------------
    @property
    def rps_limit(self) -> float:
        return self.rps

    @property
    def slots_limit(self) -> int:
        return self.slots

    @property
    def in_flight(self) -> int:
        return len(self._held) + self.local.in_flight

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def close(self) -> None:
        for t in (self._pump, self._renewer, *self._tasks):
            if t is not None:
                t.cancel()
        if self._recovery is not None:
            self._recovery.cancel()
            self._recovery = None
        self.local.close()


def drop_prefetched() -> None:
    """Give back a slot a budget hold took for this call if the call never entered it (refused, failed, escalated away)."""
    pre = _PREFETCHED.get()
    if pre is not None:
        _PREFETCHED.set(None)
        pre[0]._release(pre[1])


class ClusterFreed:
    """One pub/sub connection per process for every provider's ``freed`` channel: wakes that provider's waiters."""

    def __init__(self, link: RedisLink) -> None:
        self.link = link
        self._events: dict[str, asyncio.Event] = {}
        self._by_channel: dict[str, str] = {}
        self._task: asyncio.Task[None] | None = None

    def _event(self, lim: RedisLimit) -> asyncio.Event:
        ev = self._events.get(lim.name)
        if ev is None:
            ev = self._events[lim.name] = asyncio.Event()
            self._by_channel[lim.channel] = lim.name
        return ev

    def follow(self, lim: RedisLimit) -> None:
        self._event(lim)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._listen(), name="cluster-slots-freed")

    def poke(self, lim: RedisLimit) -> None:
        self._event(lim).set()

    async def wait(self, lim: RedisLimit, timeout: float) -> None:
        ev = self._event(lim)
        try:
            await asyncio.wait_for(ev.wait(), timeout)
        except asyncio.TimeoutError:
            pass
        ev.clear()

    async def _listen(self) -> None:
        while True:
            pubsub = self.link.client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(*self._by_channel)
                async for message in pubsub.listen():
                    name = self._by_channel.get(message.get("channel", b"").decode())
                    if name is not None:
                        self._events[name].set()
            except asyncio.CancelledError:
                raise
            except Exception:
                pass  # waiters poll every 50 ms anyway; reconnect
            finally:
                try:
                    await pubsub.aclose()
                except Exception:
                    pass
            await asyncio.sleep(0.2)

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()


def shared_limits(link: RedisLink, limiters: Mapping[str, ProviderLimiter], bus: Bus) -> tuple[dict[str, RedisLimit], ClusterFreed]:
    """One ``RedisLimit`` per provider, over the process's own limiters (kept for the breaker and for Redis outages)."""
    scripts = _Scripts(link)
    freed = ClusterFreed(link)
    limits = {name: RedisLimit(link, scripts, lim, bus, freed) for name, lim in limiters.items()}
    link.limits.update(limits)
    for lim in limits.values():
        freed.poke(lim)  # registers its channel before the listener subscribes
    return limits, freed
