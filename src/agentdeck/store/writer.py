"""The gateway's async store: a writer task that batches inserts, and the queries the admin API needs.

Why a batching writer: a disk write per request would put fsync latency on the request
path. Events arrive through a lossless bus subscription; every ``flush_interval_s`` the
writer inserts whatever has queued in one transaction. With WAL and ``synchronous=NORMAL``
a ``kill -9`` loses at most the batch being collected, never the file's integrity.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

import aiosqlite

from agentdeck.bus import Alert, Bus, LimitChanged, Policy, RequestCompleted, StopChanged
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


def _request_row(e: RequestCompleted) -> tuple[Any, ...]:
    return (
        e.id, e.ts, e.key, e.session, e.protocol, e.endpoint, e.model_requested, e.model, e.provider, e.tier, e.rule,
        e.status, int(e.stream), e.input_tokens, e.output_tokens, e.cache_read_tokens, e.cache_write_tokens,
        e.cost_usd, e.baseline_cost_usd, e.latency_ms, int(e.estimated), e.error, e.attempts, e.fallback_from,
        json.dumps(e.escalations) if e.escalations else None, e.request_body, e.response_body,
    )


class Store:
    """Owns the aiosqlite connection and the writer task."""

    def __init__(self, path: str | os.PathLike[str], bus: Bus, flush_interval_s: float = 0.5) -> None:
        self.path = Path(path)
        self.bus = bus
        self.flush_interval_s = flush_interval_s
        self.conn: aiosqlite.Connection | None = None
        self._sub = bus.subscribe("store", maxlen=200_000, policy=Policy.LOSSLESS,
                                  types={RequestCompleted.type, Alert.type, LimitChanged.type})
        self._task: asyncio.Task[None] | None = None
        self.rows_written = 0
        self.flushes = 0

    async def open(self) -> "Store":
        await asyncio.to_thread(prepare, self.path)
        self.conn = await aiosqlite.connect(self.path, timeout=30)
        self.conn.row_factory = aiosqlite.Row
        await self.conn.execute("PRAGMA synchronous=NORMAL")
        self._task = asyncio.create_task(self._run(), name="store-writer")
        return self

    async def _run(self) -> None:
        try:
            while True:
                await asyncio.sleep(self.flush_interval_s)
                await self.flush()
        except asyncio.CancelledError:
            pass

    async def flush(self) -> int:
        """Write everything queued in one transaction. Returns rows written."""
        events = self._sub.drain()
        if not events or self.conn is None:
            return 0
        reqs, alerts, limits = [], [], []
        for e in events:
            if isinstance(e, RequestCompleted):
                reqs.append(_request_row(e))
            elif isinstance(e, Alert):
                alerts.append((e.ts, e.severity, e.kind, e.message, e.key))
            elif isinstance(e, LimitChanged):
                limits.append((e.ts, e.provider, e.rps_limit, e.slots_limit, e.reason))
        if reqs:
            await self.conn.executemany(_INSERT_REQUEST, reqs)
        if alerts:
            await self.conn.executemany(_INSERT_ALERT, alerts)
        if limits:
            await self.conn.executemany(_INSERT_LIMIT, limits)
        await self.conn.commit()
        self.rows_written += len(events)
        self.flushes += 1
        return len(events)

    async def close(self) -> None:
        """Stop the writer, flush what is left, close the file."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        if self.conn is not None:
            await self.flush()
            await self.conn.close()
            self.conn = None
        self._sub.close()

    @property
    def pending(self) -> int:
        return len(self._sub)

    # -- direct writes for rare, must-survive state (not on the request path) -------------
    async def record_stop(self, ev: StopChanged) -> None:
        assert self.conn is not None
        await self.conn.execute(
            "INSERT INTO stop_events (ts, stopped, reason, key, actor) VALUES (?, ?, ?, ?, ?)",
            (ev.ts, int(ev.stopped), ev.reason, ev.key, ev.actor),
        )
        await self.conn.commit()

    async def record_session(self, name: str, digest: str, parent_key: str | None, budget_usd: float | None,
                             created: float, max_requests: int | None = None) -> None:
        assert self.conn is not None
        await self.conn.execute("INSERT OR REPLACE INTO sessions (name, digest, parent_key, budget_usd, created, "
                                "max_requests) VALUES (?, ?, ?, ?, ?, ?)",
                                (name, digest, parent_key, budget_usd, created, max_requests))
        await self.conn.commit()

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
