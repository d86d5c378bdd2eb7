"""Throughput sanity check for the mock provider: ``python -m agentdeck.bench.throughput``.

Why: the gateway benchmark needs the mock to serve well over 3,000 non-streamed requests/s on
one core, or the mock (not the gateway) would be what the benchmark measures. This starts the
mock as a child process pinned to one CPU, drives it from this process (pinned to another CPU
when there is one) with a minimal keep-alive HTTP/1.1 client on uvloop (an SDK or aiohttp
client would be the bottleneck long before the mock), and prints requests/s per endpoint.
It is a script, not a timed test: numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time

import orjson

from agentdeck.sim.mock import run_mock_process, wait_for_mock

_BODIES = {
    "openai-chat": ("/v1/chat/completions", {"authorization": "Bearer sk-bench"},
                    {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say something short."}]}),
    "anthropic-messages": ("/v1/messages", {"x-api-key": "sk-ant-bench", "anthropic-version": "2023-06-01"},
                           {"model": "claude-haiku-4-5", "max_tokens": 64, "messages": [{"role": "user", "content": "Say something short."}]}),
    "openai-responses": ("/v1/responses", {"authorization": "Bearer sk-bench"},
                         {"model": "gpt-4.1", "input": "Say something short."}),
}


def _request_bytes(host: str, path: str, headers: dict[str, str], body: dict[str, object]) -> bytes:
    raw = orjson.dumps(body)
    lines = [f"POST {path} HTTP/1.1", f"host: {host}", "content-type: application/json", f"content-length: {len(raw)}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + raw


async def _worker(host: str, port: int, req: bytes, stop_at: float, counts: list[int]) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.perf_counter() < stop_at:
            writer.write(req)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
                    break
            await reader.readexactly(length)
            counts[0] += 1
            if status != 200:
                counts[1] += 1
    finally:
        writer.close()


async def _drive(host: str, port: int, req: bytes, seconds: float, concurrency: int) -> tuple[int, int, float]:
    counts = [0, 0]
    t0 = time.perf_counter()
    await asyncio.gather(*(_worker(host, port, req, t0 + seconds, counts) for _ in range(concurrency)))
    return counts[0], counts[1], time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m agentdeck.bench.throughput", description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=3.0, help="duration per endpoint (default 3)")
    ap.add_argument("--concurrency", type=int, default=32, help="keep-alive connections (default 32)")
    ap.add_argument("--latency-ms", type=float, default=0.0, help="mock latency per request (default 0)")
    args = ap.parse_args(argv)

    proc = run_mock_process(0, latency_ms=args.latency_ms)
    try:
        url = wait_for_mock(proc)
        host, port_s = url.removeprefix("http://").rsplit(":", 1)
        port = int(port_s)
        cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
        if len(cpus) >= 2:
            os.sched_setaffinity(proc.pid, {cpus[0]})
            os.sched_setaffinity(0, {cpus[1]})
            print(f"mock pinned to CPU {cpus[0]}, load generator to CPU {cpus[1]}")
        try:
            import uvloop

            runner = uvloop.run
        except ImportError:  # pragma: no cover - uvloop is a dependency via uvicorn[standard]
            runner = asyncio.run
        import psutil

        child = psutil.Process(proc.pid)
        for name, (path, headers, body) in _BODIES.items():
            req = _request_bytes(host, path, headers, body)
            runner(_drive(host, port, req, 0.5, args.concurrency))  # warm-up
            cpu0 = sum(child.cpu_times()[:2])
            n, bad, dt = runner(_drive(host, port, req, args.seconds, args.concurrency))
            cpu = sum(child.cpu_times()[:2]) - cpu0
            # req per CPU-second is what one core can serve, whatever else the machine is doing
            print(f"{name:20s} {n / dt:8.0f} req/s wall, {n / max(cpu, 1e-9):8.0f} req per mock CPU-second "
                  f"({n} requests in {dt:.1f}s, mock used {cpu:.2f} CPU-s, {bad} non-200)")
    finally:
        proc.terminate()
        proc.wait(10)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
