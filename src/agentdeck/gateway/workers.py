"""`agentdeck serve --workers N`: N gateway processes on one machine behind one port.

Why processes and SO_REUSEPORT: one Python process uses one core; N processes each bind
the same port with SO_REUSEPORT and the kernel spreads new connections over them. They
share budget, stop and provider limits through the cluster backend, so ``backend =
"local"`` with N > 1 is refused (N ledgers would mean N budgets).

The parent holds the port (bound, not listening, so the kernel sends it nothing), starts
the workers, restarts one that dies, and on SIGINT/SIGTERM passes the signal on and waits
for them to drain. Each worker keeps its own SQLite log in ``<data_dir>/workers/<i>`` (two
processes writing one SQLite file would wait on each other's locks); all workers answer
to one admin token, which the parent hands them through the environment, never argv.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from agentdeck.config import Config
from agentdeck.errors import AgentdeckError

TOKEN_ENV = "AGENTDECK_WORKER_ADMIN_TOKEN"
MAX_RESTARTS_PER_MIN = 10


def check_workers(cfg: Config, workers: int) -> None:
    """One clear error for a worker count that cannot share state."""
    if workers < 1:
        raise AgentdeckError(f"--workers: {workers} is not a number of processes (use 1 or more)")
    if workers > 1 and cfg.cluster.backend == "local":
        raise AgentdeckError(
            f"--workers {workers} needs shared state: with [cluster] backend = \"local\" each worker would keep its own "
            "budget, emergency stop and provider limits; set [cluster] backend = \"redis\" and url (docs/cluster.md), "
            "or run one process")


def _reuseport_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise AgentdeckError(f"cannot listen on {host}:{port}: {e.strerror}") from None
    return sock


def worker_data_dir(cfg: Config, index: int) -> Path:
    return cfg.gateway.data_path / "workers" / str(index)


def serve_workers(args: argparse.Namespace, cfg: Config, host: str, port: int, workers: int) -> int:
    """Run ``workers`` gateway processes on ``host:port`` until SIGINT/SIGTERM (the parent side)."""
    from agentdeck.cli.common import clear_runtime, write_runtime
    from agentdeck.gateway.server import check_bind, url_of

    check_workers(cfg, workers)
    check_bind(cfg, host)
    if cfg.otel.endpoint:  # each worker exports its own spans; a missing `otel` extra is one line before any starts
        from agentdeck.observe.otel import otlp_exporter

        otlp_exporter(cfg.otel.endpoint, cfg.otel.headers)
    holder = _reuseport_socket(host, port)
    port = holder.getsockname()[1]
    url = url_of(holder)
    token = cfg.gateway.admin_token or secrets.token_urlsafe(24)
    env = {**os.environ, TOKEN_ENV: token}
    base = [sys.executable, "-m", "agentdeck.gateway.workers", "--host", host, "--port", str(port)]
    if getattr(args, "config", None):
        base += ["--config", str(args.config)]
    if getattr(args, "log_format", None):
        base += ["--log-format", args.log_format]
    if getattr(args, "quiet", False):
        base.append("--quiet")
    if getattr(args, "verbose", False):
        base.append("--verbose")

    def spawn(i: int) -> "subprocess.Popen[bytes]":
        return subprocess.Popen([*base, "--index", str(i)], env=env, stdout=subprocess.PIPE)

    procs = [spawn(i) for i in range(workers)]
    for p in procs:  # each says it listens before the port is announced
        assert p.stdout is not None
        if not p.stdout.readline():
            for q in procs:
                q.terminate()
            raise AgentdeckError("a worker did not start (its error is above)")
    stopping = False

    def on_signal(signum: int, _frame: Any) -> None:
        nonlocal stopping
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGINT if stopping else signum)  # a second signal: stop waiting for calls
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    write_runtime(cfg, url, token, kind="serve")
    print(f"agentdeck gateway listening on {url} ({workers} workers, cluster '{cfg.cluster.name}')", flush=True)
    if not cfg.gateway.admin_token:
        print("admin token: generated for this run (in the runtime file, mode 0600)", file=sys.stderr, flush=True)
    restarts: list[float] = []
    try:
        while not stopping:
            time.sleep(0.2)
            for i, p in enumerate(procs):
                if p.poll() is None or stopping:
                    continue
                now = time.monotonic()
                restarts = [t for t in restarts if now - t < 60.0] + [now]
                if len(restarts) > MAX_RESTARTS_PER_MIN:
                    print(f"agentdeck: worker {i} keeps dying (exit {p.returncode}); stopping", file=sys.stderr, flush=True)
                    on_signal(signal.SIGTERM, None)
                    break
                print(f"agentdeck: worker {i} (pid {p.pid}) exited with {p.returncode}; starting it again",
                      file=sys.stderr, flush=True)
                procs[i] = spawn(i)
        grace = cfg.gateway.shutdown_grace_s + 10.0
        for p in procs:
            try:
                p.wait(grace)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
    finally:
        holder.close()
        clear_runtime(cfg)
    print("agentdeck gateway stopped", file=sys.stderr, flush=True)
    return 0


def _worker(argv: list[str]) -> int:
    """One worker: the gateway on its own SO_REUSEPORT socket, its own SQLite, the shared admin token."""
    import uvicorn

    from agentdeck.config import load_config
    from agentdeck.gateway.app import Gateway
    from agentdeck.gateway.server import _request_exit, _uvloop, url_of, uvicorn_config
    from agentdeck.observe import NORMAL, QUIET, VERBOSE, attach

    p = argparse.ArgumentParser(prog="agentdeck-worker")
    p.add_argument("--host", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--index", type=int, required=True)
    p.add_argument("--config")
    p.add_argument("--log-format", choices=("human", "json"))
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--verbose", action="store_true")
    args = p.parse_args(argv)
    cfg = load_config(args.config)
    cfg.gateway.admin_token = os.environ.pop(TOKEN_ENV, "") or cfg.gateway.admin_token
    cfg.gateway.data_dir = str(worker_data_dir(cfg, args.index))
    sock = _reuseport_socket(args.host, args.port)
    sock.listen(2048)
    sock.setblocking(False)
    gateway = Gateway(cfg)
    gateway.address = url_of(sock)
    server = uvicorn.Server(uvicorn_config(gateway, cfg))
    verbosity = QUIET if args.quiet else VERBOSE if args.verbose else NORMAL

    async def main() -> None:
        task = asyncio.ensure_future(server.serve(sockets=[sock]))
        while not server.started and not task.done():
            await asyncio.sleep(0.01)
        observers = None
        if server.started:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, _request_exit, server)
            observers = attach(gateway.bus, cfg, log_stream=sys.stderr, log_format=args.log_format,
                               verbosity=verbosity, secrets=gateway.secrets())
            print(f"worker {args.index} ready", flush=True)
            gc.collect()
            gc.freeze()  # as serve: what start-up built stays out of the collector's walks
        try:
            await task
        finally:
            if observers is not None:
                observers.close()

    uv = _uvloop()
    try:
        if uv is not None:
            uv.run(main())
        else:
            asyncio.run(main())
    except AgentdeckError as e:
        print(f"agentdeck: worker {args.index}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(_worker(sys.argv[1:]))
