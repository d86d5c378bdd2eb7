"""The console's one window onto a gateway: read events, send commands.

Why an interface with two implementations: the console must behave the same whether the
gateway runs in this process (``agentdeck console``, the default) or in another one
(``agentdeck console --attach URL`` to a running ``agentdeck serve``). Panes only ever see
:class:`ConsoleEngine` (not to be confused with the flaky runner's ``RunEngine``); they never
reach into the gateway's objects.

- :class:`InProcessEngine` subscribes to the gateway's bus with a coalescing, bounded queue.
  The gateway keeps running on its own thread and loop; commands hop onto that loop.
- :class:`RemoteEngine` reads ``/admin/events`` (Server-Sent Events) into the same kind of
  bounded queue, reconnects on its own with backoff, and sends commands to the admin API.

Both are drained by the console on a timer (never one UI message per event), and both count
what they had to drop so the console can say so instead of silently falling behind.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import orjson
from pydantic import ValidationError

from agentdeck.bus import Event, Policy, event_from_dict
from agentdeck.gateway.admin import GatewayStatus
from agentdeck.wire.sse import SSEDecoder

if TYPE_CHECKING:
    import httpx

    from agentdeck.gateway.server import GatewayThread
    from agentdeck.observe import Observers

GIL_SWITCH_S = 0.001  # see InProcessEngine.run
QUEUE_MAX = 20_000  # 20 s of backlog at 1,000 events/s; past that the oldest go (and are counted)


class EngineError(Exception):
    """A command could not be carried out (gateway unreachable, refused, ...); the message is for the user."""


@runtime_checkable
class ConsoleEngine(Protocol):
    """What the console needs from a gateway."""

    mode: str  # "embedded", "attached", or "child process" (attached to a gateway this console started)
    url: str
    owns_gateway_process: bool  # quitting the console stops the gateway (embedded, child process)

    @property
    def connected(self) -> bool: ...

    @property
    def dropped(self) -> int:
        """Events lost between the gateway and the console (bounded queue overflow)."""

    @property
    def generation(self) -> int:
        """Bumped on every (re)connection, so the console knows to reload state."""

    @property
    def last_error(self) -> str | None: ...

    def drain(self, limit: int | None = None) -> list[Event]: ...

    async def run(self) -> None:
        """Long-running part (reading the event stream); returns when closed."""

    async def status(self) -> GatewayStatus: ...

    async def recent_requests(self, limit: int) -> list[dict[str, Any]]: ...

    async def history(self) -> dict[str, Any]: ...

    async def stop(self, reason: str, key: str | None = None) -> dict[str, Any]: ...

    async def resume(self, key: str | None = None) -> dict[str, Any]: ...

    async def close(self) -> None: ...


class InProcessEngine:
    """The gateway in this process, on its own thread and event loop (``GatewayThread``)."""

    mode = "embedded"
    owns_gateway_process = True

    def __init__(self, gateway_thread: "GatewayThread", *, owns_gateway: bool = True, maxlen: int = QUEUE_MAX,
                 log_file: "Path | None | bool" = True) -> None:
        """``log_file``: where the embedded gateway's call log goes (True: ``gateway.log`` in its data
        dir, False or None: nowhere); never the terminal, which Textual owns. Traces go out too
        when the config has ``[otel] endpoint``."""
        self._gt = gateway_thread
        self._owns = owns_gateway
        self.url = gateway_thread.url
        self._sub = gateway_thread.bus.subscribe("console", maxlen=maxlen, policy=Policy.COALESCE)
        self._closed = asyncio.Event()
        self.log_path: Path | None = None
        if log_file is True:
            self.log_path = gateway_thread.cfg.gateway.data_path / "gateway.log"
        elif log_file:
            self.log_path = Path(log_file)
        self._observers = _observe(gateway_thread, self.log_path)

    @property
    def connected(self) -> bool:
        return True

    @property
    def dropped(self) -> int:
        return self._sub.dropped

    @property
    def generation(self) -> int:
        return 1

    @property
    def last_error(self) -> str | None:
        return None

    def drain(self, limit: int | None = None) -> list[Event]:
        return self._sub.drain(limit)

    async def run(self) -> None:
        """While the console runs, hand the interpreter lock over every millisecond instead of every 5.

        The embedded gateway and the console share one interpreter lock. With CPython's default
        5 ms switch interval, a call that arrives while a frame is being composed waits up to
        5 ms at each of its wake-ups (request read, provider answer), which is what pushed the
        gateway's added p99 from ~3.5 ms to ~10 ms (``python -m agentdeck.bench.console
        --one-caller``). At 1 ms the rise is 1-3 ms; shorter intervals cost more in lock
        hand-offs than they save (0.5 ms doubled the median, 0.2 ms tripled it). Only a gateway
        in its own process (``--gateway-process``) is untouched by the console."""
        before = sys.getswitchinterval()
        sys.setswitchinterval(min(before, GIL_SWITCH_S))
        try:
            await self._closed.wait()
        finally:
            sys.setswitchinterval(before)

    async def _on_gateway(self, coro: Any, timeout: float = 10.0) -> Any:
        """Run ``coro`` on the gateway's loop without blocking the console's loop."""
        try:
            return await asyncio.to_thread(self._gt.call, coro, timeout)
        except Exception as e:  # a command that failed is reported, never a crash of the console
            raise EngineError(f"the gateway did not answer: {e!r}") from e

    async def status(self) -> GatewayStatus:
        from agentdeck.gateway import admin

        gw = self._gt.gateway

        async def read() -> GatewayStatus:
            return admin.gateway_status(admin.ports_of(gw))

        return await self._on_gateway(read())

    async def recent_requests(self, limit: int) -> list[dict[str, Any]]:
        gw = self._gt.gateway

        async def read() -> list[dict[str, Any]]:
            await gw.store.flush()
            return await gw.store.recent_requests(limit)

        return await self._on_gateway(read())

    async def history(self) -> dict[str, Any]:
        gw = self._gt.gateway

        async def read() -> dict[str, Any]:
            await gw.store.flush()
            return {"stops": await gw.store.stop_history(), "alerts": await gw.store.recent_alerts()}

        return await self._on_gateway(read())

    async def stop(self, reason: str, key: str | None = None) -> dict[str, Any]:
        gw = self._gt.gateway

        async def do() -> dict[str, Any]:
            await gw.killswitch.stop(reason, key=key, actor="console")
            return {"stopped": True, "key": key, "reason": reason}

        return await self._on_gateway(do())

    async def resume(self, key: str | None = None) -> dict[str, Any]:
        gw = self._gt.gateway

        async def do() -> dict[str, Any]:
            await gw.killswitch.resume(key=key, actor="console")
            return {"stopped": gw.killswitch.state()["stopped"], "key": key}

        return await self._on_gateway(do())

    async def close(self) -> None:
        self._closed.set()
        self._sub.close()
        await asyncio.to_thread(self._observers.close)
        if self._owns:
            await asyncio.to_thread(self._gt.stop)


def _observe(gt: "GatewayThread", log_path: Path | None) -> "Observers":
    """The embedded gateway's call log (to a 0600 file) and traces, drained off the request path."""
    from agentdeck.observe import attach

    stream = None
    if log_path is not None:
        from agentdeck.paths import private_dir

        private_dir(log_path.parent)
        fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        stream = os.fdopen(fd, "a", encoding="utf-8")
    return attach(gt.bus, gt.cfg, log_stream=stream, secrets=gt.gateway.secrets(), close_stream=True)


class RemoteEngine:
    """A gateway in another process, through ``/admin/events`` and the admin API."""

    def __init__(self, url: str, admin_token: str, *, maxlen: int = QUEUE_MAX,
                 backoff_s: tuple[float, float] = (0.25, 5.0), child: bool = False) -> None:
        """``child``: the gateway is a child process of this console (``--gateway-process``), so it
        goes away when the console quits; otherwise it is someone else's and keeps running."""
        self.mode = "child process" if child else "attached"
        self.owns_gateway_process = child
        self.url = url.rstrip("/")
        self._token = admin_token
        self._q: deque[Event] = deque()
        self._maxlen = maxlen
        self._dropped = 0
        self._connected = False
        self._generation = 0
        self._last_error: str | None = None
        self._closed = False
        self._backoff = backoff_s
        self._client: "httpx.AsyncClient | None" = None
        self.connected_at: float | None = None

    # -- reading ----------------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def dropped(self) -> int:
        return self._dropped

    @property
    def generation(self) -> int:
        return self._generation

    @property
    def last_error(self) -> str | None:
        return self._last_error

    def drain(self, limit: int | None = None) -> list[Event]:
        q = self._q
        n = len(q) if limit is None else min(limit, len(q))
        return [q.popleft() for _ in range(n)]

    def _offer(self, ev: Event) -> None:
        if len(self._q) >= self._maxlen:
            self._q.popleft()
            self._dropped += 1
        self._q.append(ev)

    def _http(self) -> "httpx.AsyncClient":
        import httpx

        if self._client is None:
            self._client = httpx.AsyncClient(headers={"Authorization": f"Bearer {self._token}"},
                                             timeout=httpx.Timeout(5.0, read=30.0))
        return self._client

    async def run(self) -> None:
        """Read the event stream until closed, reconnecting with exponential backoff."""
        import httpx

        delay = self._backoff[0]
        while not self._closed:
            try:
                async with self._http().stream("GET", self.url + "/admin/events") as r:
                    if r.status_code == 401:
                        self._last_error = "the gateway refused the admin token (set AGENTDECK_ADMIN_TOKEN)"
                    elif r.status_code != 200:
                        self._last_error = f"/admin/events answered {r.status_code}"
                    else:
                        self._connected = True
                        self.connected_at = time.time()
                        self._generation += 1
                        self._last_error = None
                        delay = self._backoff[0]
                        await self._read(r)
                        self._last_error = "event stream ended"
            except asyncio.CancelledError:
                self._connected = False
                raise
            except (httpx.HTTPError, OSError, ValueError) as e:
                self._last_error = f"{type(e).__name__}: {e}".rstrip(": ") if str(e) else type(e).__name__
            self._connected = False
            if self._closed:
                break
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._backoff[1])

    async def _read(self, r: "httpx.Response") -> None:
        # The shared SSE decoder: any line ends, `data:` with or without its space, comments
        # (keep-alives) skipped; it cuts a whole chunk at once, so 1,000 events/s stay cheap.
        decoder = SSEDecoder()
        async for chunk in r.aiter_bytes():
            for sse in decoder.feed(chunk):
                if sse.data is None:
                    continue
                try:
                    ev = event_from_dict(orjson.loads(sse.data))
                except (orjson.JSONDecodeError, TypeError):
                    continue
                if ev is not None:
                    self._offer(ev)

    # -- commands ---------------------------------------------------------------------------
    async def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        import httpx

        try:
            r = await self._http().request(method, self.url + path, json=body)
        except httpx.HTTPError as e:
            raise EngineError(f"cannot reach the gateway at {self.url} ({type(e).__name__})") from None
        if r.status_code == 401:
            raise EngineError(f"the gateway at {self.url} refused the admin token")
        if r.status_code >= 400:
            raise EngineError(f"the gateway answered {r.status_code}: {r.text[:200]}")
        return r.json()

    async def status(self) -> GatewayStatus:
        try:
            return GatewayStatus.model_validate(await self._call("GET", "/admin/status"))
        except ValidationError as e:  # a gateway of another version: say so, never a traceback
            raise EngineError(f"the gateway's status document does not match this console: {e.errors()[0]['loc']}") from None

    async def recent_requests(self, limit: int) -> list[dict[str, Any]]:
        return (await self._call("GET", f"/admin/requests?limit={int(limit)}")).get("requests", [])

    async def history(self) -> dict[str, Any]:
        return await self._call("GET", "/admin/history")

    async def stop(self, reason: str, key: str | None = None) -> dict[str, Any]:
        return await self._call("POST", "/admin/stop", {"reason": reason, "key": key, "actor": "console"})

    async def resume(self, key: str | None = None) -> dict[str, Any]:
        return await self._call("POST", "/admin/resume", {"key": key, "actor": "console"})

    async def close(self) -> None:
        self._closed = True
        self._connected = False
        if self._client is not None:
            await self._client.aclose()
            self._client = None
