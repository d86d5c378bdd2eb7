"""The gateway's async store: a writer task that batches inserts, and the queries the admin API needs.

Why a batching writer: a disk write per request would put fsync latency on the request
path. Events arrive through a lossless bus subscription; every ``flush_interval_s`` the
writer inserts whatever has queued in one transaction. With WAL and ``synchronous=NORMAL``
a ``kill -9`` loses at most the batch being collected, never the file's integrity.

Why it never gives up: a disk that is full for a minute must not cost the spend ledger its
rows. A failed transaction is rolled back and the same batch is retried with exponential
backoff (``retry_max_s`` at most) while new events keep queueing. The queue is bounded
(``max_pending`` events queued, plus the batch in hand, at most as many again): past it
new events are refused and counted, and a P0 alert says how many rows were dropped. The first failure raises a P0
alert too, and the recovery a P2. Stops and sessions (:meth:`Store.record_stop`,
:meth:`Store.record_session`) are written at once and say whether they reached the disk;
one that did not waits in the same ordered queue, so a stop and its resume reach the file
in the order they happened. :meth:`Store.close` writes what it can and says on stderr
what it could not: it never raises, so a shutdown on a full disk still completes.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiosqlite

from agentdeck.bus import Alert, Bus, Event, LimitChanged, Policy, RequestCompleted, StopChanged
from agentdeck.store.db import prepare

_REQUEST_COLS = (
    "id", "ts", "key", "session", "protocol", "endpoint", "model_requested", "model", "provider", "tier", "rule",
    "status", "stream", "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "cost_usd",
    "baseline_cost_usd", "latency_ms", "estimated", "error", "attempts", "fallback_from", "escalations",
    "request_body", "response_body",
)
_INSERT_REQUEST = f"INSERT OR REPLACE INTO requests ({', '.join(_REQUEST_COLS)}) VALUES ({', '.join('?' * len(_REQUEST_COLS))})"
_INSERT_ALERT = "INSERT INTO alerts (ts, severity, kind, message, key) VALUES (?, ?, ?, ?, ?)"
_INSERT_LIMIT = "INSERT INTO limit_events (ts, provider, rps_limit, slots_limit, reason) VALUES (?, ?, ?, ?, ?)"
_INSERT_STOP = "INSERT INTO stop_events (ts, stopped, reason, key, actor) VALUES (?, ?, ?, ?, ?)"

# Events per transaction: a long outage's backlog is written in pieces, not one huge commit.
BATCH_MAX = 20_000
# How often a direct write (a stop, a session) is tried before the caller hears "in memory only".
DIRECT_TRIES = 3
# What a failed write can raise: SQLite's errors (disk full, I/O, locked), the OS's, a closed connection.
WRITE_ERRORS = (sqlite3.Error, OSError, ValueError)


def _request_row(e: RequestCompleted) -> tuple[Any, ...]:
    return (
        e.id, e.ts, e.key, e.session, e.protocol, e.endpoint, e.model_requested, e.model, e.provider, e.tier, e.rule,
        e.status, int(e.stream), e.input_tokens, e.output_tokens, e.cache_read_tokens, e.cache_write_tokens,
        e.cost_usd, e.baseline_cost_usd, e.latency_ms, int(e.estimated), e.error, e.attempts, e.fallback_from,
        json.dumps(e.escalations) if e.escalations else None, e.request_body, e.response_body,
    )


@dataclass(slots=True, frozen=True)
class StoreHealth:
    """How the writer is doing: what waits in memory, what was lost, and the last error."""

    pending: int
    dropped: int
    rows_written: int
    failing: bool
    failures: int
    last_error: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"pending": self.pending, "dropped": self.dropped, "rows_written": self.rows_written,
                "failing": self.failing, "failures": self.failures, "last_error": self.last_error}


def _describe(e: BaseException) -> str:
    text = str(e) or type(e).__name__
    return f"{type(e).__name__}: {text}"


class Store:
    """Owns the aiosqlite connection and the writer task."""

    def __init__(self, path: str | os.PathLike[str], bus: Bus, flush_interval_s: float = 0.5, *,
                 max_pending: int = 200_000, retry_max_s: float = 30.0) -> None:
        self.path = Path(path)
        self.bus = bus
        self.flush_interval_s = flush_interval_s
        self.retry_max_s = retry_max_s
        self.conn: aiosqlite.Connection | None = None
        self._sub = bus.subscribe("store", maxlen=max_pending, policy=Policy.LOSSLESS,
                                  types={RequestCompleted.type, Alert.type, LimitChanged.type})
        self._task: asyncio.Task[None] | None = None
        self._lock: asyncio.Lock | None = None
        self._batch: list[Event] = []  # taken from the queue, not yet committed (retried as is)
        self._direct: list[tuple[str, tuple[Any, ...]]] = []  # stops and sessions not yet committed, in order
        self._reported_dropped = 0
        self.rows_written = 0
        self.flushes = 0
        self.failures = 0  # consecutive failed transactions (0 = healthy)
        self.last_error: str | None = None
        self.unwritten_at_close = 0
        self._opened = False  # between open() and close(); the connection itself may be re-made

    async def open(self) -> "Store":
        await asyncio.to_thread(prepare, self.path)
        await self._connect()
        self._lock = asyncio.Lock()
        self._opened = True
        self._task = asyncio.create_task(self._run(), name="store-writer")
        return self

    async def _connect(self) -> None:
        self.conn = await aiosqlite.connect(self.path, timeout=30)
        self.conn.row_factory = aiosqlite.Row
        await self.conn.execute("PRAGMA synchronous=NORMAL")

    def retry_delay(self) -> float:
        """The wait before the next attempt: the flush interval while healthy, doubling while failing."""
        if not self.failures:
            return self.flush_interval_s
        return min(self.retry_max_s, max(self.flush_interval_s, 0.05) * 2 ** min(self.failures, 16))

    async def _run(self) -> None:
        try:
            while True:
                await asyncio.sleep(self.retry_delay())
                await self.flush()
                self._report_drops()
        except asyncio.CancelledError:
            pass

    async def flush(self) -> int:
        """Write what is queued (up to BATCH_MAX events) in one transaction. Returns rows written.

        Never raises: a failed write is rolled back, kept, alerted and retried by the writer task.
        """
        if not self._opened:
            return 0
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            return await self._flush_locked()

    async def _flush_locked(self) -> int:
        if not self._batch:
            self._batch = self._sub.drain(min(BATCH_MAX, self._sub.maxlen))
        if not self._batch and not self._direct:
            return 0
        reqs, alerts, limits = [], [], []
        for e in self._batch:
            if isinstance(e, RequestCompleted):
                reqs.append(_request_row(e))
            elif isinstance(e, Alert):
                alerts.append((e.ts, e.severity, e.kind, e.message, e.key))
            elif isinstance(e, LimitChanged):
                limits.append((e.ts, e.provider, e.rps_limit, e.slots_limit, e.reason))
        try:
            if self.conn is None:
                await self._connect()
            conn = self.conn
            assert conn is not None
            for sql, params in self._direct:
                await conn.execute(sql, params)
            if reqs:
                await conn.executemany(_INSERT_REQUEST, reqs)
            if alerts:
                await conn.executemany(_INSERT_ALERT, alerts)
            if limits:
                await conn.executemany(_INSERT_LIMIT, limits)
            await conn.commit()
        except WRITE_ERRORS as e:
            await self._failed(e)
            return 0
        n = len(self._batch) + len(self._direct)
        self._batch = []
        self._direct = []
        self.rows_written += n
        self.flushes += 1
        if self.failures:
            self.bus.publish(Alert(severity="P2", kind="store-write-recovered",
                                   message=f"the database is written again after {self.failures} failed attempts "
                                           f"({self.last_error}); nothing held in memory was lost"
                                           + (f" but {self._sub.dropped} rows were dropped" if self._sub.dropped else "")))
            self.failures = 0
        return n

    async def _failed(self, e: BaseException) -> None:
        """Roll back (or reconnect if that fails too), count the failure, and alert on the first one."""
        self.failures += 1
        self.last_error = _describe(e)
        conn = self.conn
        if conn is not None:
            try:
                await conn.rollback()
            except WRITE_ERRORS:
                self.conn = None  # reconnect on the next attempt
                try:
                    await conn.close()
                except WRITE_ERRORS:
                    pass
        if self.failures == 1:
            self.bus.publish(Alert(
                severity="P0", kind="store-write-failed",
                message=(f"the database {self.path.name} cannot be written ({self.last_error}); "
                         f"{self.pending} rows are held in memory and retried with backoff; past "
                         f"{self._sub.maxlen} queued rows new ones are dropped")))

    def _report_drops(self) -> None:
        dropped = self._sub.dropped
        if dropped > self._reported_dropped:
            new = dropped - self._reported_dropped
            self._reported_dropped = dropped
            self.bus.publish(Alert(
                severity="P0", kind="store-rows-dropped",
                message=(f"the store queue is full ({self._sub.maxlen} rows waiting for the database: "
                         f"{self.last_error or 'writes too slow'}); {new} rows were dropped ({dropped} in all) "
                         "and will not be in the database: spend of those calls is lost at a restart")))

    async def close(self) -> int:
        """Stop the writer, write what is left (a few tries), close the file. Returns the rows not written.

        Never raises; what could not be written is said on stderr (alerts may already be stopped).
        """
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        if self._opened:
            tries = 0
            while self.pending and tries < DIRECT_TRIES:
                if await self.flush() == 0:
                    tries += 1
                    if self.pending:
                        await asyncio.sleep(0.2 * tries)
        self._report_drops()
        left = self.pending
        self.unwritten_at_close = left
        if left or self._sub.dropped:
            print(f"agentdeck: store: {left} rows could not be written to {self.path} at shutdown "
                  f"({self.last_error or 'unknown error'}) and {self._sub.dropped} were dropped earlier; "
                  "their calls are missing from the database and from the ledger after a restart",
                  file=sys.stderr)
        if self.conn is not None:
            try:
                await self.conn.close()
            except WRITE_ERRORS:
                pass
            self.conn = None
        self._opened = False
        self._sub.close()
        return left

    @property
    def pending(self) -> int:
        """Rows waiting in memory for the database (queued, in the batch being retried, direct writes)."""
        return len(self._sub) + len(self._batch) + len(self._direct)

    def health(self) -> StoreHealth:
        return StoreHealth(pending=self.pending, dropped=self._sub.dropped, rows_written=self.rows_written,
                           failing=self.failures > 0, failures=self.failures, last_error=self.last_error)

    # -- direct writes for rare, must-survive state (not on the request path) -------------
    async def _write_now(self, sql: str, params: tuple[Any, ...]) -> bool:
        """Queue one row behind any not yet written, try to commit it; True once it is on disk.

        False means the row waits in memory and the writer task keeps retrying it.
        """
        if not self._opened:
            return False
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            self._direct.append((sql, params))
            row = self._direct[-1]
            for attempt in range(DIRECT_TRIES):
                await self._flush_locked()
                if not any(r is row for r in self._direct):
                    return True
                await asyncio.sleep(0.05 * (attempt + 1))
            return False

    async def record_stop(self, ev: StopChanged) -> bool:
        """Write a stop or resume; True once durable, False if it is held in memory (retried)."""
        return await self._write_now(_INSERT_STOP, (ev.ts, int(ev.stopped), ev.reason, ev.key, ev.actor))

    async def record_session(self, name: str, digest: str, parent_key: str | None, budget_usd: float | None,
                             created: float, max_requests: int | None = None) -> bool:
        """Write a session (its digest, never its secret); True once durable, False if held in memory (retried)."""
        return await self._write_now(
            "INSERT OR REPLACE INTO sessions (name, digest, parent_key, budget_usd, created, max_requests) "
            "VALUES (?, ?, ?, ?, ?, ?)", (name, digest, parent_key, budget_usd, created, max_requests))

    async def sessions(self) -> list[dict[str, Any]]:
        return await self.fetchall("SELECT name, digest, parent_key, budget_usd, created, max_requests FROM sessions")

    async def session_request_counts(self) -> dict[str, int]:
        """Calls recorded per session, those refused for its request limit left out (what a restart counts again).

        Conservative on purpose: other refusals (a stop, a budget) count, so a restarted gateway
        never gives a limited session more calls than it had left.
        """
        await self.flush()
        rows = await self.fetchall(
            "SELECT session, COUNT(*) AS n FROM requests WHERE session IS NOT NULL "
            "AND (error IS NULL OR error != 'session_request_limit') GROUP BY session")
        return {r["session"]: int(r["n"]) for r in rows}

    # -- queries ------------------------------------------------------------------------
    async def fetchall(self, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        if self.conn is None and self._opened:
            await self._connect()  # the writer dropped a broken connection
        assert self.conn is not None
        async with self.conn.execute(sql, params) as cur:
            rows = await cur.fetchall()
        return [dict(r) for r in rows]

    async def recent_requests(self, limit: int = 50) -> list[dict[str, Any]]:
        rows = await self.fetchall(
            "SELECT id, ts, key, session, model_requested, model, provider, tier, rule, status, stream, input_tokens, "
            "output_tokens, cost_usd, baseline_cost_usd, latency_ms, estimated, error, attempts, fallback_from, "
            "escalations FROM requests ORDER BY ts DESC LIMIT ?",
            (limit,),
        )
        for r in rows:
            r["stream"] = bool(r["stream"])
            r["estimated"] = bool(r["estimated"])
            r["escalations"] = json.loads(r["escalations"]) if r["escalations"] else []
        return rows

    async def spend_since(self, since_ts: float, key: str | None = None) -> float:
        if key is None:
            rows = await self.fetchall("SELECT COALESCE(SUM(cost_usd), 0) AS s FROM requests WHERE ts >= ?", (since_ts,))
        else:
            rows = await self.fetchall(
                "SELECT COALESCE(SUM(cost_usd), 0) AS s FROM requests WHERE ts >= ? AND key = ?", (since_ts, key)
            )
        return float(rows[0]["s"])

    async def spend_by_key_since(self, since_ts: float) -> dict[str, float]:
        rows = await self.fetchall(
            "SELECT key, SUM(cost_usd) AS s FROM requests WHERE ts >= ? GROUP BY key", (since_ts,)
        )
        return {r["key"]: float(r["s"]) for r in rows}

    async def spend_rows_since(self, since_ts: float) -> list[dict[str, Any]]:
        """(ts, key, session, cost) of every priced request since ``since_ts``: what the ledger rebuilds its windows from."""
        return await self.fetchall("SELECT ts, key, session, cost_usd FROM requests WHERE ts >= ? AND cost_usd > 0",
                                   (since_ts,))

    async def stop_state(self) -> dict[str | None, dict[str, Any]]:
        """The latest stop row per key (None = global) whose state is 'stopped'."""
        rows = await self.fetchall(
            "SELECT s.ts, s.stopped, s.reason, s.key, s.actor FROM stop_events s "
            "JOIN (SELECT COALESCE(key, '') AS k, MAX(seq) AS m FROM stop_events GROUP BY COALESCE(key, '')) last "
            "ON s.seq = last.m"
        )
        return {r["key"]: r for r in rows if r["stopped"]}

    async def stop_history(self, limit: int = 50) -> list[dict[str, Any]]:
        return await self.fetchall("SELECT ts, stopped, reason, key, actor FROM stop_events ORDER BY seq DESC LIMIT ?", (limit,))

    async def recent_alerts(self, limit: int = 50) -> list[dict[str, Any]]:
        return await self.fetchall("SELECT ts, severity, kind, message, key FROM alerts ORDER BY seq DESC LIMIT ?", (limit,))


def now() -> float:
    return time.time()
