"""One pipelined Redis connection for the cluster's scripts: every command of a loop turn in one write.

Why not a connection per command from a pool: on the request path each Redis command cost
about 80 us of CPU in the pool, the per-read timeout and the request/response round trip,
and 32 concurrent callers paid it one at a time. Here commands are queued as they are
asked for, written together (one syscall for all the commands of a loop turn) on one
connection kept open, and their replies are read back in order by one reader: Redis
answers a connection's commands in the order it got them, so the n-th reply belongs to the
n-th command sent. Order is also a guarantee the cluster uses: a settle sent before a read
is applied before it.

It is built from redis-py's own connection (its URL handling, handshake, auth, TLS and its
reply parser, hiredis when installed). There is no per-command timeout: a watchdog fails
every command still waiting once the oldest one has waited ``op_timeout_s``, which is what
"Redis is down" means for the link; the next command reconnects.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Any, Sequence

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError


LATER_S = 0.002
"""How long a command nobody waits for may wait to share a write with the next one."""


def _bulk(x: Any) -> bytes:
    b = x if isinstance(x, bytes) else x.encode() if isinstance(x, str) else repr(x).encode()
    return b"$%d\r\n%s\r\n" % (len(b), b)


def pack(args: Sequence[Any]) -> bytes:
    """One command in RESP (what redis-py's pack_command makes, without its generality: our args are
    str, bytes, int or float)."""
    return b"*%d\r\n" % len(args) + b"".join([_bulk(a) for a in args])


class Lua:
    """A script the mux runs by its SHA (loaded on every new connection, and again if Redis forgot it)."""

    __slots__ = ("text", "sha")

    def __init__(self, text: str) -> None:
        import hashlib

        self.text = text
        self.sha = hashlib.sha1(text.encode("utf-8")).hexdigest()


class RedisMux:
    """Pipelined commands over one connection; see the module docstring."""

    def __init__(self, url: str, connect_timeout_s: float, op_timeout_s: float) -> None:
        # socket_timeout None: no timer per read or write (the watchdog bounds the wait instead).
        self._pool = aioredis.ConnectionPool.from_url(
            url, socket_connect_timeout=connect_timeout_s, socket_timeout=None, retry=Retry(NoBackoff(), 0))
        self._connect_timeout = connect_timeout_s + op_timeout_s
        self._op_timeout = op_timeout_s
        self._scripts: dict[str, Lua] = {}
        self._keys_packed: dict[tuple[str, ...], bytes] = {}  # a script's keys repeat call after call
        self._conn: Any = None
        self._outbox: list[tuple[bytes, asyncio.Future[Any]]] = []
        self._sent: deque[tuple[asyncio.Future[Any], float]] = deque()
        self._wake = asyncio.Event()
        self._later: asyncio.TimerHandle | asyncio.Handle | None = None
        self._writer: asyncio.Task[None] | None = None
        self._reader: asyncio.Task[None] | None = None
        self._watchdog: asyncio.TimerHandle | None = None
        self._closed = False

    def register(self, script: Lua) -> Lua:
        self._scripts[script.sha] = script
        return script

    # -- asking ------------------------------------------------------------------------------
    def submit(self, *args: Any, soon: bool = False) -> asyncio.Future[Any]:
        return self.submit_packed(pack(args), soon)

    def submit_packed(self, packed: bytes, soon: bool = False) -> asyncio.Future[Any]:
        """Queue one command; the future gets its reply (or the error: ResponseError, ConnectionError, TimeoutError).

        ``soon``: nobody waits for this one (a settle, a release): while other commands are on their way
        it may wait up to LATER_S for the next command someone does wait for, so that both go in one
        write (a write to Redis costs more CPU than the command itself). Order is kept: a command sent
        after it is written after it, so a budget hold always sees the settles sent before it.
        """
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        if self._closed:
            fut.set_exception(RedisConnectionError("the cluster link is closed"))
            return fut
        self._outbox.append((packed, fut))
        if soon:
            if self._later is None and not self._wake.is_set():
                # Nothing on its way to Redis: no write to share, so go at the end of this loop turn (one
                # caller's settle and release then run in Redis while it sends its next call, not before it).
                self._later = loop.call_later(LATER_S, self._flush_later) if self._sent else \
                    loop.call_soon(self._flush_later)
        else:
            self._wake.set()
        if self._writer is None or self._writer.done():
            self._writer = loop.create_task(self._write(), name="cluster-redis-writer")
        return fut

    def _flush_later(self) -> None:
        self._later = None
        self._wake.set()

    def evalsha(self, script: Lua, keys: Sequence[str], args: Sequence[Any], soon: bool = False) -> asyncio.Future[Any]:
        return self.submit_packed(self._pack_evalsha(script, keys, args), soon)

    def _pack_evalsha(self, script: Lua, keys: Sequence[str], args: Sequence[Any]) -> bytes:
        kt = tuple(keys)
        kp = self._keys_packed.get(kt)
        if kp is None:
            if len(self._keys_packed) > 4096:
                self._keys_packed.clear()
            kp = self._keys_packed[kt] = b"".join([_bulk(k) for k in kt])
        head = b"*%d\r\n$7\r\nEVALSHA\r\n$40\r\n%s\r\n%s" % (3 + len(kt) + len(args), script.sha.encode(),
                                                               _bulk(str(len(kt))))
        return head + kp + b"".join([_bulk(a) for a in args])

    async def eval(self, script: Lua, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """Run a script and wait for its reply (loading it first if Redis has forgotten it)."""
        try:
            packed = self._pack_evalsha(script, keys, args)
            if self._conn is not None and not self._sent and not self._closed:
                return await self._send_now(packed)
            return await self.submit_packed(packed)
        except ResponseError as e:
            if not str(e).startswith("NOSCRIPT"):
                raise
        await self.submit("SCRIPT", "LOAD", script.text)
        return await self.evalsha(script, keys, args)

    async def _send_now(self, packed: bytes) -> Any:
        """Nothing on its way to Redis: write from the caller's own task, without a hop through the writer
        (one caller's round trip is then one write and one read). What is queued goes first, in order."""
        conn = self._conn
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        batch, self._outbox = self._outbox, []
        if self._later is not None:
            self._later.cancel()
            self._later = None
        now = time.monotonic()
        self._sent.extend([(f, now) for _, f in batch])
        self._sent.append((fut, now))
        if self._watchdog is None:
            self._watchdog = asyncio.get_running_loop().call_later(self._op_timeout / 4, self._watch)
        try:
            # the bytes go to the transport before this coroutine first yields: nothing can come between
            await conn.send_packed_command(b"".join([p for p, _ in batch]) + packed, check_health=False)
        except (OSError, RedisConnectionError, RedisTimeoutError) as e:
            self._broken(conn, e if isinstance(e, (RedisConnectionError, RedisTimeoutError))
                         else RedisConnectionError(str(e)))
        return await fut

    @property
    def waiting(self) -> int:
        """Commands sent or queued whose reply has not come yet."""
        return len(self._outbox) + len(self._sent)

    # -- the connection ----------------------------------------------------------------------
    async def _connect(self) -> Any:
        conn = self._pool.make_connection()
        await asyncio.wait_for(conn.connect(), self._connect_timeout)
        # Scripts first, on every new connection: EVALSHA then never meets NOSCRIPT after a Redis restart.
        if self._scripts:
            packed = conn.pack_commands([("SCRIPT", "LOAD", s.text) for s in self._scripts.values()])
            await conn.send_packed_command(packed, check_health=False)
            for _ in self._scripts:
                await asyncio.wait_for(conn.read_response(), self._op_timeout)
        return conn

    async def _write(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if not self._outbox:
                if self._closed:
                    return
                continue
            if self._conn is None:
                try:
                    self._conn = await self._connect()
                except (OSError, asyncio.TimeoutError, RedisConnectionError, RedisTimeoutError, ResponseError) as e:
                    self._fail_queued(e if isinstance(e, (RedisConnectionError, RedisTimeoutError))
                                      else RedisConnectionError(f"cannot connect: {type(e).__name__}: {e}"))
                    continue
                self._reader = asyncio.get_running_loop().create_task(self._read(self._conn), name="cluster-redis-reader")
            batch, self._outbox = self._outbox, []
            if self._later is not None:
                self._later.cancel()
                self._later = None
            now = time.monotonic()
            conn = self._conn
            packed = b"".join([p for p, _ in batch])
            self._sent.extend([(fut, now) for _, fut in batch])
            if self._watchdog is None:
                self._watchdog = asyncio.get_running_loop().call_later(self._op_timeout / 4, self._watch)
            try:
                await conn.send_packed_command(packed, check_health=False)
            except (OSError, RedisConnectionError, RedisTimeoutError) as e:
                self._broken(conn, e if isinstance(e, (RedisConnectionError, RedisTimeoutError))
                             else RedisConnectionError(str(e)))

    async def _read(self, conn: Any) -> None:
        sent = self._sent
        while True:
            try:
                reply: Any = await conn.read_response(disconnect_on_error=False)
                err: BaseException | None = None
            except ResponseError as e:  # a reply that is an error: this command's, not the connection's
                reply, err = None, e
            except asyncio.CancelledError:
                raise
            except Exception as e:
                self._broken(conn, e if isinstance(e, (RedisConnectionError, RedisTimeoutError))
                             else RedisConnectionError(f"{type(e).__name__}: {e}"))
                return
            if not sent:
                continue  # nothing asked for it (a push message): ignore
            fut = sent.popleft()[0]
            if fut.done():
                continue
            if err is None:
                fut.set_result(reply)
            else:
                fut.set_exception(err)

    def _watch(self) -> None:
        """While commands wait, fail them all once the oldest has waited op_timeout_s (Redis hangs or is gone)."""
        self._watchdog = None
        if not self._sent:
            return
        age = time.monotonic() - self._sent[0][1]
        if age >= self._op_timeout:
            self._broken(self._conn, RedisTimeoutError(f"no reply within {self._op_timeout:g}s"))
            return
        self._watchdog = asyncio.get_running_loop().call_later(
            max(0.01, min(self._op_timeout - age, self._op_timeout / 4)), self._watch)

    def _broken(self, conn: Any, err: BaseException) -> None:
        """The connection is lost: every command sent on it fails (they may or may not have run)."""
        if conn is not None and conn is self._conn:
            self._conn = None
            reader = self._reader
            if reader is not None and reader is not asyncio.current_task():
                reader.cancel()
            asyncio.get_running_loop().create_task(conn.disconnect(nowait=True))
        while self._sent:
            fut = self._sent.popleft()[0]
            if not fut.done():
                fut.set_exception(err)
        self._fail_queued(err)

    def _fail_queued(self, err: BaseException) -> None:
        batch, self._outbox = self._outbox, []
        for _, fut in batch:
            if not fut.done():
                fut.set_exception(err)

    def drop_connection(self) -> None:
        """Forget the connection (the link saw Redis down): the next command connects anew."""
        if self._conn is not None:
            self._broken(self._conn, RedisConnectionError("the connection was dropped"))

    async def close(self, drain_s: float = 2.0) -> None:
        """Wait (up to ``drain_s``) for the replies of commands already asked for, then close."""
        end = time.monotonic() + drain_s
        self._wake.set()  # what waits for a later write goes now
        while self.waiting and time.monotonic() < end:
            await asyncio.sleep(0.005)
        self._closed = True
        self._wake.set()
        if self._later is not None:
            self._later.cancel()
            self._later = None
        self._broken(self._conn, RedisConnectionError("the cluster link is closed"))
        for t in (self._writer, self._reader):
            if t is not None and not t.done():
                t.cancel()
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        await self._pool.aclose()
