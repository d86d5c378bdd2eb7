"""`agentdeck bench`: the gateway's overhead, measured side by side with direct calls.

Why side by side in one run: machines are noisy, so absolute numbers from two runs are not
comparable. The mock provider and the gateway each run in their own process; the load
generator alternates direct and through-gateway rounds and reports both and their ratio.
"""

from __future__ import annotations

import asyncio
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import psutil

from agentdeck.bench.stats import percentile

BENCH_KEY = "bench-key-0123456789"
BENCH_ADMIN = "bench-admin-0123456789"
_BODY = orjson.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "ping"}], "max_tokens": 16})


@dataclass
class Round:
    target: str
    requests: int
    errors: int
    seconds: float
    latencies_ms: list[float] = field(default_factory=list)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def pct(self, q: float) -> float:
        return percentile(self.latencies_ms, q)


def _spawn(args: list[str], env: dict[str, str] | None = None) -> tuple[subprocess.Popen[str], str]:
    """Start an agentdeck subcommand and wait for the line that names its URL."""
    proc = subprocess.Popen([sys.executable, "-m", "agentdeck", *args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True, env=env)
    assert proc.stdout is not None
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        m = re.search(r"(http://\S+)", line or "")
        if m:
            return proc, m.group(1)
        if proc.poll() is not None:
            break
    proc.kill()
    raise RuntimeError(f"`agentdeck {' '.join(args)}` did not start")


def config_head(data_dir: Path) -> str:
    """What every bench gateway's config starts with: loopback, the bench key and admin token, budgets
    far above any bench's spend, no anomaly detector (a bench's steady flood is not an anomaly)."""
    return f"""
[gateway]
host = "127.0.0.1"
port = 0
admin_token = "{BENCH_ADMIN}"
data_dir = "{data_dir}"

[[keys]]
name = "bench"
key = "{BENCH_KEY}"

[budget]
hourly_usd = 1000000.0
daily_usd = 1000000.0

[anomaly]
enabled = false
"""


def _write_config(path: Path, upstream: str, data_dir: Path, limits: bool) -> None:
    path.write_text(config_head(data_dir) + f"""
[providers.openai]
protocol = "openai"
base_url = "{upstream}"
api_key = "sk-bench-provider"
models = ["gpt-4o-mini", "gpt-4o"]

[providers.openai.limits]
enabled = {str(limits).lower()}
rps = 100000
max_rps = 100000
slots = 10000
max_slots = 10000
""")


async def _load(url: str, headers: dict[str, str], concurrency: int, seconds: float) -> Round:
    conn = aiohttp.TCPConnector(limit=concurrency)
    lat: list[float] = []
    errors = 0
    n = 0
    async with aiohttp.ClientSession(connector=conn) as s:
        end = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal errors, n
            while time.perf_counter() < end:
                t = time.perf_counter()
                async with s.post(url, data=_BODY, headers=headers) as r:
                    await r.read()
                    if r.status != 200:
                        errors += 1
                lat.append((time.perf_counter() - t) * 1000)
                n += 1

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        took = time.perf_counter() - t0
    return Round(url, n, errors, took, lat)


def run_gateway_bench(duration: float = 5.0, concurrency: int = 32, rounds: int = 2, single_calls: int = 1500,
                      limits: bool = True) -> dict[str, Any]:
    """Throughput at ``concurrency`` and single-caller added latency, direct vs through the gateway."""
    tmp = Path(tempfile.mkdtemp(prefix="agentdeck-bench-"))
    mock, mock_url = _spawn(["mock-upstream", "--port", "0"])
    cfg = tmp / "bench.toml"
    _write_config(cfg, mock_url, tmp / "data", limits)
    gw, gw_url = _spawn(["serve", "--config", str(cfg), "--port", "0"])
    gw_ps = psutil.Process(gw.pid)
    direct_h = {"authorization": "Bearer sk-bench-provider", "content-type": "application/json"}
    gw_h = {"authorization": f"Bearer {BENCH_KEY}", "content-type": "application/json"}
    direct_url, via_url = mock_url + "/v1/chat/completions", gw_url + "/v1/chat/completions"
    try:
        asyncio.run(_load(via_url, gw_h, concurrency, 1.0))  # warm up connections and code paths
        direct_rounds, via_rounds, rss = [], [], []
        for _ in range(rounds):
            direct_rounds.append(asyncio.run(_load(direct_url, direct_h, concurrency, duration)))
            via_rounds.append(asyncio.run(_load(via_url, gw_h, concurrency, duration)))
            rss.append(gw_ps.memory_info().rss / 1e6)
        single_direct = asyncio.run(_single(direct_url, direct_h, single_calls))
        single_via = asyncio.run(_single(via_url, gw_h, single_calls))
        rss.append(gw_ps.memory_info().rss / 1e6)
    finally:
        for p in (gw, mock):
            p.terminate()
        for p in (gw, mock):
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
    d_rps = statistics.median(r.rps for r in direct_rounds)
    v_rps = statistics.median(r.rps for r in via_rounds)
    return {
        "concurrency": concurrency,
        "duration_s": duration,
        "direct_rps": round(d_rps, 1),
        "gateway_rps": round(v_rps, 1),
        "gateway_vs_direct": round(v_rps / d_rps, 3) if d_rps else None,
        "gateway_errors": sum(r.errors for r in via_rounds),
        "single_direct_p50_ms": round(single_direct.pct(0.5), 3),
        "single_direct_p99_ms": round(single_direct.pct(0.99), 3),
        "single_gateway_p50_ms": round(single_via.pct(0.5), 3),
        "single_gateway_p99_ms": round(single_via.pct(0.99), 3),
        "added_p50_ms": round(single_via.pct(0.5) - single_direct.pct(0.5), 3),
        "added_p99_ms": round(single_via.pct(0.99) - single_direct.pct(0.99), 3),
        "gateway_rss_mb_max": round(max(rss), 1),
        "limits": limits,
    }


async def _single(url: str, headers: dict[str, str], n: int) -> Round:
    lat: list[float] = []
    errors = 0
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) as s:
        t0 = time.perf_counter()
        for _ in range(n):
            t = time.perf_counter()
            async with s.post(url, data=_BODY, headers=headers) as r:
                await r.read()
                errors += r.status != 200
            lat.append((time.perf_counter() - t) * 1000)
        took = time.perf_counter() - t0
    return Round(url, n, errors, took, lat)


def format_gateway_report(r: dict[str, Any]) -> str:
    return "\n".join([
        f"gateway overhead, {r['concurrency']} keep-alive connections, non-streaming, mock provider at zero latency "
        f"(limits {'on' if r['limits'] else 'off'})",
        f"  throughput   direct {r['direct_rps']:>8.0f} req/s   via gateway {r['gateway_rps']:>8.0f} req/s   "
        f"ratio {r['gateway_vs_direct']:.2f}   gateway errors {r['gateway_errors']}",
        f"  one caller   direct p50 {r['single_direct_p50_ms']:.2f} ms p99 {r['single_direct_p99_ms']:.2f} ms   "
        f"via gateway p50 {r['single_gateway_p50_ms']:.2f} ms p99 {r['single_gateway_p99_ms']:.2f} ms",
        f"  added by the gateway: p50 {r['added_p50_ms']:.2f} ms, p99 {r['added_p99_ms']:.2f} ms",
        f"  gateway resident memory (max seen): {r['gateway_rss_mb_max']:.0f} MB",
    ])


async def _load_httpx(url: str, headers: dict[str, str], concurrency: int, seconds: float) -> Round:
    import httpx

    lat: list[float] = []
    errors = 0
    n = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30) as c:
        end = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal errors, n
            while time.perf_counter() < end:
                t = time.perf_counter()
                r = await c.post(url, content=_BODY, headers=headers)
                errors += r.status_code != 200
                lat.append((time.perf_counter() - t) * 1000)
                n += 1

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        took = time.perf_counter() - t0
    return Round(url, n, errors, took, lat)


def run_client_bench(duration: float = 3.0, concurrency: int = 32, rounds: int = 2) -> dict[str, Any]:
    """Why the gateway's upstream client is aiohttp: both clients against the mock, alternating, same load."""
    mock, mock_url = _spawn(["mock-upstream", "--port", "0"])
    url = mock_url + "/v1/chat/completions"
    h = {"authorization": "Bearer sk-bench-provider", "content-type": "application/json"}
    try:
        asyncio.run(_load(url, h, concurrency, 0.5))
        aio, hx = [], []
        for _ in range(rounds):
            aio.append(asyncio.run(_load(url, h, concurrency, duration)))
            hx.append(asyncio.run(_load_httpx(url, h, concurrency, duration)))
    finally:
        mock.terminate()
        mock.wait(10)
    a_rps, h_rps = statistics.median(r.rps for r in aio), statistics.median(r.rps for r in hx)
    return {"concurrency": concurrency, "aiohttp_rps": round(a_rps, 1), "httpx_rps": round(h_rps, 1),
            "aiohttp_vs_httpx": round(a_rps / h_rps, 2) if h_rps else None,
            "aiohttp_p50_ms": round(statistics.median(r.pct(0.5) for r in aio), 2),
            "httpx_p50_ms": round(statistics.median(r.pct(0.5) for r in hx), 2)}


def format_client_report(r: dict[str, Any]) -> str:
    return (f"upstream client at {r['concurrency']} concurrent keep-alive requests against the mock provider\n"
            f"  aiohttp {r['aiohttp_rps']:>8.0f} req/s (p50 {r['aiohttp_p50_ms']:.2f} ms)\n"
            f"  httpx   {r['httpx_rps']:>8.0f} req/s (p50 {r['httpx_p50_ms']:.2f} ms)\n"
            f"  aiohttp / httpx = {r['aiohttp_vs_httpx']:.2f}")


if __name__ == "__main__":  # pragma: no cover - manual use
    print(format_gateway_report(run_gateway_bench(float(os.environ.get("D", "3")))))
