"""Serving the gateway with uvicorn: headless (`agentdeck serve`) or on its own thread (the console).

Why its own thread and loop beside the console: Textual's rendering must never share an
event loop with the request path, or a busy frame would add latency to every call.
uvicorn runs with httptools and uvloop (plain asyncio where uvloop is missing), access logs off, and no signal capture in the
thread variant (the console owns the terminal's signals). Every connection goes through the
front door (:mod:`agentdeck.gateway.frontdoor`): a header deadline, a header size cap and a
connection cap under the file limit, so slow or huge headers cannot starve normal callers.
"""

from __future__ import annotations

import asyncio
import gc
import ipaddress
import logging
import signal
import socket
import threading
import time
from typing import Any, Coroutine, TypeVar

import uvicorn

from agentdeck.bus import Bus
from agentdeck.config import Config
from agentdeck.errors import AgentdeckError, ConfigError
from agentdeck.gateway.app import Gateway
from agentdeck.gateway.frontdoor import FrontDoor, protocol_class

T = TypeVar("T")


def _uvloop() -> Any:
    """uvloop where it is installed (Linux and macOS with uvicorn[standard]); None means plain asyncio."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(cfg: Config, host: str) -> None:
    """A gateway reachable from other machines must have an admin token and caller keys."""
    if not _is_loopback(host) and (not cfg.gateway.admin_token or not cfg.keys):
        raise ConfigError(
            f"{cfg.source}: gateway.host: refusing to listen on non-loopback address {host!r} without "
            "[gateway] admin_token and at least one [[keys]] entry")


def bind_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise AgentdeckError(f"cannot listen on {host}:{port}: {e.strerror}") from None
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def uvicorn_config(app: Any, cfg: Config, door: FrontDoor | None = None) -> uvicorn.Config:
    """uvicorn's settings; the HTTP protocol is httptools behind the front door's bounds."""
    logging.getLogger("uvicorn.error").setLevel(logging.WARNING)
    return uvicorn.Config(
        app, http=protocol_class(door or FrontDoor()), loop="uvloop" if _uvloop() is not None else "asyncio", lifespan="on", access_log=False,
        log_level="warning",
        log_config=None, timeout_graceful_shutdown=int(max(1, cfg.gateway.shutdown_grace_s)),
        timeout_keep_alive=30, backlog=2048, proxy_headers=False, server_header=False, date_header=False,
    )


class GatewayThread:
    """The gateway on a thread of its own, with its own event loop (for the console and tests)."""

    def __init__(self, cfg: Config, *, host: str | None = None, port: int | None = None, bus: Bus | None = None,
                 front_door: FrontDoor | None = None) -> None:
        self.cfg = cfg
        self.host = host or cfg.gateway.host
        check_bind(cfg, self.host)
        self.sock = bind_socket(self.host, cfg.gateway.port if port is None else port)
        self.url = url_of(self.sock)
        self.gateway = Gateway(cfg, bus=bus)
        self.gateway.address = self.url
        self.bus = self.gateway.bus
        self.admin_token = self.gateway.admin_token
        self._server = uvicorn.Server(uvicorn_config(self.gateway, cfg, front_door))
        self._thread = threading.Thread(target=self._run, name="agentdeck-gateway", daemon=True)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None

    def _run(self) -> None:
        uv = _uvloop()
        loop = uv.new_event_loop() if uv is not None else asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        except BaseException as e:  # surfaced to start() / stop()
            self._error = e
        finally:
            self._started.set()
            loop.close()

    async def _serve(self) -> None:
        self._server.config.setup_event_loop = lambda: None  # type: ignore[method-assign]
        task = asyncio.ensure_future(self._server.serve(sockets=[self.sock]))
        while not self._server.started and not task.done():
            await asyncio.sleep(0.01)
        self._started.set()
        await task

    def start(self, timeout: float = 15.0) -> "GatewayThread":
        self._thread.start()
        if not self._started.wait(timeout) or not self._server.started:
            raise AgentdeckError(f"the gateway did not start: {self._error!r}")
        return self

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
        """Run a coroutine on the gateway's loop from another thread and wait for its result."""
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def stop(self, timeout: float = 15.0) -> None:
        if self._loop is None or not self._thread.is_alive():
            return
        self._server.should_exit = True
        self._thread.join(timeout)

    def stop_quietly(self, drain_s: float = 3.0) -> None:
        """Stop on purpose (the user quit): let calls in flight finish for a moment, then stop
        without uvicorn printing a traceback for each call it had to cancel (a cancelled call is
        expected then, not an error to show on the terminal)."""
        deadline = time.monotonic() + drain_s
        while self.gateway.in_flight > 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        log = logging.getLogger("uvicorn.error")
        level = log.level
        log.setLevel(logging.CRITICAL)
        try:
            self.stop()
        finally:
            log.setLevel(level)

    def __enter__(self) -> "GatewayThread":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _request_exit(server: uvicorn.Server) -> None:
    """First signal: stop accepting and drain; second: stop waiting for calls in flight."""
    if server.should_exit:
        server.force_exit = True
    server.should_exit = True


def serve_forever(cfg: Config, host: str, port: int, *, on_ready: Any = None) -> None:
    """Run the gateway in this process until SIGINT/SIGTERM; uvicorn drains calls in flight, then the store flushes."""
    check_bind(cfg, host)
    sock = bind_socket(host, port)
    gateway = Gateway(cfg, alerts_to_stderr=True)
    gateway.address = url_of(sock)
    server = uvicorn.Server(uvicorn_config(gateway, cfg))

    async def main() -> None:
        task = asyncio.ensure_future(server.serve(sockets=[sock]))
        while not server.started and not task.done():
            await asyncio.sleep(0.01)
        if server.started:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, _request_exit, server)
            if on_ready is not None:
                on_ready(url_of(sock), gateway)
            # What start-up built (config, the price catalog, imported modules) lives as long as the process:
            # out of the collector's sight, a collection walks only what calls create.
            gc.collect()
            gc.freeze()
        await task

    uv = _uvloop()
    if uv is not None:
        uv.run(main())
    else:
        asyncio.run(main())
