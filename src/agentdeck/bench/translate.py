"""`agentdeck bench --scenario translate`: a translated call side by side with an untranslated one.

Why both through one gateway in one run: what is measured is the cost of translation, so the
two sides differ only in that. The OpenAI chat caller asks once for a model of an OpenAI-protocol
provider (passed through) and once for a model of an Anthropic-protocol provider (translated
openai->anthropic); then the same the other way round (an Anthropic caller). Both providers are
the same mock process at zero latency, so the gateway's work is all there is to see.
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from agentdeck.bench.gateway import BENCH_ADMIN, BENCH_KEY, Round, _spawn

_PAIRS: list[tuple[str, str, str, str]] = [
    # (label, path, direct model, translated model)
    ("openai caller", "/v1/chat/completions", "gpt-4o-mini", "claude-haiku-4-5"),
    ("anthropic caller", "/v1/messages", "claude-haiku-4-5", "gpt-4o-mini"),
]


def _body(path: str, model: str, stream: bool) -> bytes:
    msgs = [{"role": "user", "content": "ping"}]
    body: dict[str, Any] = {"model": model, "messages": msgs, "max_tokens": 16}
    if stream:
        body["stream"] = True
    return orjson.dumps(body)


def _write_config(path: Path, upstream: str, data_dir: Path) -> None:
    limits = "[providers.{0}.limits]\nrps = 100000\nmax_rps = 100000\nslots = 10000\nmax_slots = 10000\n"
    path.write_text(f"""
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

[routing]
translate = true

[providers.openai]
protocol = "openai"
base_url = "{upstream}"
api_key = "sk-bench-provider"
models = ["gpt-4o-mini"]

{limits.format("openai")}
[providers.anthropic]
protocol = "anthropic"
base_url = "{upstream}"
api_key = "sk-ant-bench-provider"
models = ["claude-haiku-4-5"]

{limits.format("anthropic")}
""")


async def _load(url: str, body: bytes, concurrency: int, seconds: float) -> Round:
    headers = {"authorization": f"Bearer {BENCH_KEY}", "content-type": "application/json"}
    lat: list[float] = []
    errors = n = 0
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as s:
        end = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal errors, n
            while time.perf_counter() < end:
                t = time.perf_counter()
                async with s.post(url, data=body, headers=headers) as r:
                    await r.read()
                    errors += r.status != 200
                lat.append((time.perf_counter() - t) * 1000)
                n += 1

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        took = time.perf_counter() - t0
    return Round(url, n, errors, took, lat)


def run_translate_bench(duration: float = 3.0, concurrency: int = 32, rounds: int = 2,
                        single_s: float = 3.0) -> list[dict[str, Any]]:
    """One row per (caller, streamed or not): p50 at one caller and throughput at ``concurrency``, both sides."""
    tmp = Path(tempfile.mkdtemp(prefix="agentdeck-bench-translate-"))
    mock, mock_url = _spawn(["mock-upstream", "--port", "0"])
    cfg = tmp / "bench.toml"
    _write_config(cfg, mock_url, tmp / "data")
    gw, gw_url = _spawn(["serve", "--config", str(cfg), "--port", "0"])
    rows: list[dict[str, Any]] = []
    try:
        for label, path, direct, translated in _PAIRS:
            for stream in (False, True):
                url = gw_url + path
                bodies = {"direct": _body(path, direct, stream), "translated": _body(path, translated, stream)}
                for b in bodies.values():
                    asyncio.run(_load(url, b, concurrency, 0.5))  # warm up
                single = {k: asyncio.run(_load(url, b, 1, single_s)) for k, b in bodies.items()}
                load: dict[str, list[Round]] = {"direct": [], "translated": []}
                for _ in range(rounds):
                    for k, b in bodies.items():
                        load[k].append(asyncio.run(_load(url, b, concurrency, duration)))
                d_rps = statistics.median(r.rps for r in load["direct"])
                t_rps = statistics.median(r.rps for r in load["translated"])
                rows.append({
                    "caller": label, "stream": stream, "concurrency": concurrency,
                    "direct_p50_ms": round(single["direct"].pct(0.5), 3),
                    "translated_p50_ms": round(single["translated"].pct(0.5), 3),
                    "added_p50_ms": round(single["translated"].pct(0.5) - single["direct"].pct(0.5), 3),
                    "direct_rps": round(d_rps, 1), "translated_rps": round(t_rps, 1),
                    "translated_vs_direct": round(t_rps / d_rps, 3) if d_rps else None,
                    "errors": sum(r.errors for rs in load.values() for r in rs)
                    + sum(r.errors for r in single.values()),
                })
    finally:
        for p in (gw, mock):
            p.terminate()
        for p in (gw, mock):
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
    return rows


def format_translate_report(rows: list[dict[str, Any]]) -> str:
    lines = ["translation overhead through one gateway (mock provider at zero latency); direct = the caller's own protocol",
             f"{'caller':<18}{'mode':<8}{'p50 direct':>12}{'p50 transl.':>13}{'added':>9}"
             f"{'req/s direct':>14}{'req/s transl.':>15}{'ratio':>7}{'errors':>8}"]
    for r in rows:
        lines.append(f"{r['caller']:<18}{'stream' if r['stream'] else 'unary':<8}{r['direct_p50_ms']:>10.2f}ms"
                     f"{r['translated_p50_ms']:>11.2f}ms{r['added_p50_ms']:>7.2f}ms{r['direct_rps']:>14.0f}"
                     f"{r['translated_rps']:>15.0f}{r['translated_vs_direct']:>7.2f}{r['errors']:>8}")
    return "\n".join(lines)
