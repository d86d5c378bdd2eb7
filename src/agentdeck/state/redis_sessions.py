"""`agentdeck run` sessions valid on every process of a cluster: created on one, accepted by all.

Layout, under the cluster's prefix (``agentdeck:<name>:``):

- ``sessions``: hash, the SHA-256 digest of a session's secret -> the session as JSON (name,
  parent key, budget, created, request limit). Only the digest is stored: the secret is
  handed to the caller once and is never in Redis, a log, the database or an error;
- ``sessions:names``: hash, session name -> digest, so a name is unique across the cluster;
- ``sessions:used``: hash, session name -> calls counted, for sessions with a request limit.

Why a cache in process: admission runs on every call. A session this process knows (it
created it, restored it from its SQLite, or fetched it once) is a dict read in its
``SessionRegistry``. Sessions have no expiry (a run's ``--timeout`` ends it with a stop of
its key, which is shared, not by deleting it), so a positive lookup stays cached for the
process's life; Redis is read only on a miss, for a key that looks like a session key, and
concurrent misses for one secret share one read. A miss is not cached: a session created a
moment ago on another process must work on the next call here.

A session with ``--max-requests`` is counted in Redis (one script per call of that session
only), so N processes do not hand it N allowances; once Redis says it is used up, this
process refuses it without asking again (a count never goes down).

Start-up and recovery: the sessions this process has on disk are written to Redis where
missing, so a fresh or emptied Redis learns them again (what Redis holds wins).

Redis down: ``on_redis_down = "fail"``: creating a session gets 503 ``cluster_unavailable``
(as every new call does then). ``"local"``: a new session is valid on this process only
until Redis is back (then the recovery hook writes it there), and a session key this process
has not seen is refused as unknown meanwhile. Two processes that each made a session of the
same name during the outage: the first to write it back owns the name in Redis, and the
other's session stays valid only where it was made (names must stay unique: budgets, stops
and the log are kept per name).
"""

from __future__ import annotations

import asyncio
import secrets
import sys
import time
from typing import Any

import orjson

from agentdeck.budget.ledger import Ledger
from agentdeck.budget.sessions import SECRET_PREFIX, Session, SessionRegistry, check_max_requests, clean_name
from agentdeck.budget.sessions import _digest as session_digest
from agentdeck.state.redis_link import ClusterUnavailable, RedisDown, RedisLink

SEED_BATCH = 200
"""Sessions written per seeding script (the script runs atomically: keep each one short)."""

# KEYS: sessions, names, used; ARGV: digest, base name, record JSON without the name, max_requests ('' = none),
# then the names no session may take (the configured keys).
_CREATE = """
local reserved = {}
for i = 5, #ARGV do reserved[ARGV[i]] = true end
local name, n = ARGV[2], 1
while reserved[name] or redis.call('HEXISTS', KEYS[2], name) == 1 do
  n = n + 1
  name = ARGV[2] .. '-' .. n
end
redis.call('HSET', KEYS[2], name, ARGV[1])
redis.call('HSET', KEYS[1], ARGV[1], '{"name":"' .. name .. '",' .. string.sub(ARGV[3], 2))
if ARGV[4] ~= '' then redis.call('HSET', KEYS[3], name, 0) end
return name
"""

# KEYS: sessions, used; ARGV: digest. The record and its calls counted, or nil.
_FETCH = """
local rec = redis.call('HGET', KEYS[1], ARGV[1])
if not rec then return false end
local name = cjson.decode(rec)['name']
return {rec, redis.call('HGET', KEYS[2], name) or '0'}
"""

# KEYS: used; ARGV: name, max_requests. The count after this call, or -1 when the session is used up.
_COUNT = """
local used = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if used >= tonumber(ARGV[2]) then return -1 end
return redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
"""

# KEYS: sessions, names, used; ARGV: (digest, name, record, used or '') per session. Redis's entries win;
# a count only rises.
_SEED = """
for i = 1, #ARGV, 4 do
  local d, name = ARGV[i], ARGV[i + 1]
  local owner = redis.call('HGET', KEYS[2], name)
  if not owner then
    redis.call('HSET', KEYS[2], name, d)
    owner = d
  end
  if owner == d then
    redis.call('HSETNX', KEYS[1], d, ARGV[i + 2])
    if ARGV[i + 3] ~= '' then
      local cur = tonumber(redis.call('HGET', KEYS[3], name) or '0')
      if tonumber(ARGV[i + 3]) > cur then redis.call('HSET', KEYS[3], name, ARGV[i + 3]) end
    end
  end
end
return 1
"""


def _record(s: Session) -> bytes:
    return orjson.dumps({"name": s.name, "parent_key": s.parent_key, "budget_usd": s.budget_usd,
                         "created": s.created, "max_requests": s.max_requests})


class RedisSessions:
    """``SessionState`` for a cluster; see the module docstring."""

    def __init__(self, link: RedisLink, registry: SessionRegistry, ledger: Ledger, reserved_names: set[str]) -> None:
        self.link = link
        self.registry = registry
        self.ledger = ledger
        self._reserved = sorted(reserved_names)
        self._hash, self._names, self._used = link.key("sessions"), link.key("sessions", "names"), link.key("sessions", "used")
        self._create = link.lua(_CREATE)
        self._fetch = link.lua(_FETCH)
        self._count = link.lua(_COUNT)
        self._seed = link.lua(_SEED)
        self._fetching: dict[str, asyncio.Task[Session | None]] = {}
        self.fetched = 0  # sessions learnt from Redis (another process created them)
        link.on_recovery(self.seed)

    # -- SessionState ------------------------------------------------------------------------
    def lookup(self, secret: str) -> Session | None:
        return self.registry.lookup(secret)

    def may_fetch(self, secret: str) -> bool:
        return secret.startswith(SECRET_PREFIX)

    async def fetch(self, secret: str) -> Session | None:
        if not self.may_fetch(secret):
            return None
        known = self.registry.lookup(secret)
        if known is not None:  # another call fetched it while this one waited
            return known
        digest = session_digest(secret)
        task = self._fetching.get(digest)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._fetch_once(digest))
            self._fetching[digest] = task
            task.add_done_callback(lambda _t: self._fetching.pop(digest, None))
        return await asyncio.shield(task)

    async def create(self, name: str, budget_usd: float | None = None, parent_key: str | None = None,
                     max_requests: int | None = None) -> tuple[str, str]:
        check_max_requests(max_requests)
        if not self.link.up and self.link.fallback:
            return self._create_here(name, budget_usd, parent_key, max_requests)
        secret = SECRET_PREFIX + secrets.token_urlsafe(24)
        digest = session_digest(secret)
        created = time.time()
        rest = orjson.dumps({"parent_key": parent_key, "budget_usd": budget_usd, "created": created,
                             "max_requests": max_requests}).decode()
        # Names this process knows but Redis may not (sessions made while it was down) are not handed out either.
        reserved = self._reserved + [s.name for s in self.registry.all()]
        try:
            raw = await self._eval(
                self._create, [self._hash, self._names, self._used],
                [digest, clean_name(name), rest, "" if max_requests is None else str(max_requests), *reserved], "create")
        except RedisDown:
            if self.link.fallback:
                return self._create_here(name, budget_usd, parent_key, max_requests)
            raise self.link.unavailable() from None
        final = raw.decode() if isinstance(raw, bytes) else str(raw)
        self.registry.restore(final, digest, parent_key, budget_usd, created, max_requests, 0)
        if budget_usd is not None:
            self.ledger.set_key_budget(final, float(budget_usd))
        return final, secret

    def take_request(self, name: str) -> bool | None:
        s = self.registry.get(name)
        if s is None or s.max_requests is None:
            return True
        if self.registry.used(name) >= s.max_requests:
            return False  # Redis said so already, and a count never goes down
        return None

    async def count_request(self, name: str) -> bool:
        s = self.registry.get(name)
        if s is None or s.max_requests is None:
            return True
        if not self.link.up and self.link.fallback:
            return self.registry.take_request(name)
        try:
            n = int(await self._eval(self._count, [self._used], [name, str(s.max_requests)], "count"))
        except RedisDown:
            if self.link.fallback:
                return self.registry.take_request(name)
            raise self.link.unavailable() from None
        # The registry's count mirrors the cluster's as last seen (status shows it; a used-up session is refused here).
        self.registry._used[name] = s.max_requests if n < 0 else n
        return n >= 0

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        """Write this process's sessions (restored from its SQLite) to Redis where missing."""
        try:
            await self.seed()
        except RedisDown:
            pass  # the link probes; seed runs again as a recovery hook
        except ClusterUnavailable:
            pass  # said on stderr; this process's own sessions still work on it (not yet on the others)

    async def seed(self) -> None:
        rows: list[str] = []
        # The registry's digest map read once (digest_of scans it per name: quadratic over many sessions).
        for digest, s in list(self.registry._by_digest.items()):
            used = str(self.registry.used(s.name)) if s.max_requests is not None else ""
            rows += [digest, s.name, _record(s).decode(), used]
        for i in range(0, len(rows), 4 * SEED_BATCH):
            await self._eval(self._seed, [self._hash, self._names, self._used], rows[i:i + 4 * SEED_BATCH], "seed")

    # -- internals ---------------------------------------------------------------------------
    async def _eval(self, script: Any, keys: list[str], args: list[str], what: str) -> Any:
        """One script: RedisDown when Redis is unreachable; any other failure (a wrong server, a bug of ours)
        is one stderr line (digests and names only, never a secret) and a 503 for the caller."""
        try:
            return await self.link.eval(script, keys, args)
        except RedisDown:
            raise
        except Exception as e:
            print(f"agentdeck: cluster session {what} failed: {type(e).__name__}: {e}", file=sys.stderr)
            raise self.link.unavailable() from None

    def _create_here(self, name: str, budget_usd: float | None, parent_key: str | None,
                     max_requests: int | None) -> tuple[str, str]:
        """Redis is down and ``on_redis_down = "local"``: a session of this process (written to Redis on recovery)."""
        final, secret = self.registry.create(name, budget_usd, parent_key, max_requests=max_requests)
        if budget_usd is not None:
            self.ledger.set_key_budget(final, float(budget_usd))
        return final, secret

    async def _fetch_once(self, digest: str) -> Session | None:
        try:
            raw: Any = await self._eval(self._fetch, [self._hash, self._used], [digest], "lookup")
        except RedisDown:
            if self.link.fallback:
                return None
            raise self.link.unavailable() from None
        if not raw:
            return None
        d = orjson.loads(raw[0])
        name = str(d["name"])
        known = self.registry._by_digest.get(digest)  # restored meanwhile (a seed, a restart): keep that one
        if known is not None:
            return known
        budget = d.get("budget_usd")
        budget_usd = None if budget is None else float(budget)
        max_requests = d.get("max_requests")
        s = self.registry.restore(name, digest, d.get("parent_key"), budget_usd, float(d.get("created") or 0.0),
                                  None if max_requests is None else int(max_requests), int(raw[1] or 0))
        if budget_usd is not None:
            self.ledger.set_key_budget(name, budget_usd)
        self.fetched += 1
        return s
