"""`agentdeck bench --scenario translate`: a translated call side by side with direct ones, in one run.

Why the direct call it is compared with reaches the SAME provider: the mock's handlers differ
(an OpenAI chat stream is twice the bytes of an Anthropic one for the same answer), and on a
shared machine the mock's CPU is taken from the gateway's. So an OpenAI caller's call translated
to the Anthropic provider is measured against an Anthropic caller's direct call to that same
provider (same mock handler, same upstream bytes): what differs is the translation, and the
caller-side protocol that comes with it. The old comparison (the same caller's direct call to a
model of its own protocol) is kept as a second ratio.

Each round runs the four loads (two callers x two providers) back to back, each translated
load right after its direct one, alternating the order between rounds; the ratio reported is
the median of the per-round ratios, so slow drift of the machine's load cancels. Beside
requests/s, the gateway process's CPU time per call (user + system, read with psutil) is
reported for each load: on a two-core machine shared with other work it is far steadier than
throughput, and it is the gateway's cost that translation adds to.
"""

from __future__ import annotations

import statistics
import subprocess
import tempfile
import time
import timeit
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import httpx
import orjson

from agentdeck.wire import PROTOCOLS, Endpoint
from agentdeck.wire.sse import SSEDecoder
from agentdeck.wire.translate import translator

from agentdeck.bench.gateway import BENCH_ADMIN, BENCH_KEY, Round, _spawn, config_head
from agentdeck.bench.loadgen import load as _load
from agentdeck.bench.loadgen import read_response as _read_response  # noqa: F401 - translate_instructions reads it here
from agentdeck.bench.loadgen import request_bytes as _request  # noqa: F401

_CALLERS: dict[str, tuple[str, str]] = {
    # caller protocol -> (its path, the model a provider of its own protocol serves)
    "openai": ("/v1/chat/completions", "gpt-4o-mini"),
    "anthropic": ("/v1/messages", "claude-haiku-4-5"),
}
_LABEL = {"openai": "OpenAI chat", "anthropic": "Anthropic"}
_TRANSLATED = [("openai", "anthropic"), ("anthropic", "openai")]
"""(caller, provider) of each translated direction measured."""


def _body(model: str, stream: bool) -> bytes:
    body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": "ping"}], "max_tokens": 16}
    if stream:
        body["stream"] = True
    return orjson.dumps(body)


def _write_config(path: Path, upstream: str, data_dir: Path) -> None:
    limits = "[providers.{0}.limits]\nrps = 100000\nmax_rps = 100000\nslots = 10000\nmax_slots = 10000\n"
    path.write_text(config_head(data_dir) + f"""
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


@dataclass
class _Measured:
    """One load at ``concurrency``: its round, and the gateway's and the mock's CPU per call."""

    round: Round
    gateway_cpu_us: float
    mock_cpu_us: float


class _Cpu:
    """A process's CPU time (user + system, its children included), read with psutil."""

    def __init__(self, pid: int) -> None:
        import psutil

        self._proc = psutil.Process(pid)

    def seconds(self) -> float:
        total = 0.0
        for p in [self._proc, *self._proc.children(recursive=True)]:
            t = p.cpu_times()
            total += t.user + t.system
        return total


def _measure(url: str, body: bytes, concurrency: int, seconds: float, gw: _Cpu, mock: _Cpu) -> _Measured:
    g0, m0 = gw.seconds(), mock.seconds()
    r = _load(url, body, concurrency, seconds)
    g1, m1 = gw.seconds(), mock.seconds()
    calls = max(r.requests, 1)
    return _Measured(r, (g1 - g0) / calls * 1e6, (m1 - m0) / calls * 1e6)


def _provider_answer(mock_url: str, provider: str, model: str, stream: bool) -> bytes:
    """The mock's answer as the gateway gets it from this provider (a chat stream with its usage chunk)."""
    body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": "ping"}], "max_tokens": 16}
    if stream:
        body["stream"] = True
        if provider == "openai":
            body["stream_options"] = {"include_usage": True}
    headers = {"authorization": "Bearer sk-bench", "x-api-key": "sk-bench", "anthropic-version": "2023-06-01"}
    with httpx.Client(timeout=10) as c:
        r = c.post(mock_url + _CALLERS[provider][0], json=body, headers=headers)
        r.raise_for_status()
        return r.content


def _cpu_us(fn: Callable[[], object], n: int = 2000) -> float:
    """Best of seven of ``n`` calls, in this thread's CPU time (preemption by other work does not count)."""
    return min(timeit.repeat(fn, number=n, repeat=7, timer=time.thread_time)) / n * 1e6


def _codec_cost(mock_url: str, caller: str, provider: str, stream: bool) -> tuple[float, float]:
    """In-process CPU (us per call) of what a translated call does with the provider's answer and the
    caller's request, against what the direct call to the same provider does: (direct, translated).

    Unary: direct = patch the body, read the usage; translated = translate the request, read the
    usage, translate the answer. Stream: the provider's own meter over its stream, against the
    translating meter over the same stream (SSE framing, the same on both sides, left out)."""
    direct_ep, caller_ep = Endpoint(_CALLERS[provider][0]), Endpoint(_CALLERS[caller][0])
    model = _CALLERS[provider][1]
    body = orjson.loads(_body(model, stream))
    pw, cw = PROTOCOLS[direct_ep], PROTOCOLS[caller_ep]
    p_direct, p_caller = pw.parse(direct_ep, body, orjson.dumps(body)), cw.parse(caller_ep, body, orjson.dumps(body))
    tr = translator(caller_ep, provider)
    assert tr is not None
    raw = _provider_answer(mock_url, provider, model, stream)
    if stream:
        events = SSEDecoder().feed(raw)

        def direct() -> None:
            meter = pw.meter(p_direct)
            for ev in events:
                meter.feed(ev)

        def translated() -> None:
            meter = tr.meter(cw, p_caller, model)
            for ev in events:
                meter.feed(ev)

        return _cpu_us(direct), _cpu_us(translated)
    return (_cpu_us(lambda: (pw.patch(p_direct, model, 16), pw.usage_from_json(orjson.loads(raw)))),
            _cpu_us(lambda: (tr.request(p_caller, model, 16), pw.usage_from_json(orjson.loads(raw)),
                             tr.response(raw, model))))


def run_translate_bench(duration: float = 3.0, concurrency: int = 32, rounds: int = 2,
                        single_s: float = 3.0) -> list[dict[str, Any]]:
    """One row per (translated direction, streamed or not): p50 at one caller, throughput and gateway
    CPU per call at ``concurrency``, against the direct call to the same provider (and the same caller's)."""
    tmp = Path(tempfile.mkdtemp(prefix="agentdeck-bench-translate-"))
    mock, mock_url = _spawn(["mock-upstream", "--port", "0"])
    cfg = tmp / "bench.toml"
    _write_config(cfg, mock_url, tmp / "data")
    gw, gw_url = _spawn(["serve", "--config", str(cfg), "--port", "0"])
    gw_cpu, mock_cpu = _Cpu(gw.pid), _Cpu(mock.pid)
    rows: list[dict[str, Any]] = []
    try:
        for stream in (False, True):
            loads = {(c, p): (gw_url + _CALLERS[c][0], _body(_CALLERS[p][1], stream)) for c in _CALLERS for p in _CALLERS}
            for url, body in loads.values():
                _load(url, body, concurrency, 0.5)  # warm up
            single = {k: _load(url, body, 1, single_s) for k, (url, body) in loads.items()}
            # each translated load right after the direct load to its provider; the order reversed every other round
            order = [k for c, p in _TRANSLATED for k in ((p, p), (c, p))]
            measured: dict[tuple[str, str], list[_Measured]] = {k: [] for k in loads}
            for i in range(rounds):
                for k in order if i % 2 == 0 else order[::-1]:
                    measured[k].append(_measure(*loads[k], concurrency, duration, gw_cpu, mock_cpu))
            for c, p in _TRANSLATED:
                rows.append(_row(c, p, stream, concurrency, single, measured, _codec_cost(mock_url, c, p, stream)))
    finally:
        for proc in (gw, mock):
            proc.terminate()
        for proc in (gw, mock):
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
    return rows


def _row(caller: str, provider: str, stream: bool, concurrency: int, single: dict[tuple[str, str], Round],
         measured: dict[tuple[str, str], list[_Measured]], codec: tuple[float, float]) -> dict[str, Any]:
    tr, same_provider, same_caller = (caller, provider), (provider, provider), (caller, caller)

    def rps(k: tuple[str, str]) -> float:
        return statistics.median(m.round.rps for m in measured[k])

    def cpu(k: tuple[str, str]) -> float:
        return statistics.median(m.gateway_cpu_us for m in measured[k])

    def ratios(base: tuple[str, str]) -> list[float]:
        return [t.round.rps / b.round.rps for t, b in zip(measured[tr], measured[base]) if b.round.rps]

    fair = ratios(same_provider)
    p50_t, p50_d = single[tr].pct(0.5), single[same_provider].pct(0.5)
    return {
        "caller": caller, "provider": provider, "stream": stream, "concurrency": concurrency,
        "direct_p50_ms": round(p50_d, 3), "translated_p50_ms": round(p50_t, 3), "added_p50_ms": round(p50_t - p50_d, 3),
        "direct_rps": round(rps(same_provider), 1), "translated_rps": round(rps(tr), 1),
        "translated_vs_direct": round(statistics.median(fair), 3) if fair else None,
        "ratio_min": round(min(fair), 3) if fair else None, "ratio_max": round(max(fair), 3) if fair else None,
        "same_caller_direct_rps": round(rps(same_caller), 1),
        "translated_vs_same_caller": round(statistics.median(ratios(same_caller)), 3) if ratios(same_caller) else None,
        "direct_cpu_us": round(cpu(same_provider), 1), "translated_cpu_us": round(cpu(tr), 1),
        "added_cpu_us": round(cpu(tr) - cpu(same_provider), 1),
        "cpu_ratio": round(cpu(same_provider) / cpu(tr), 3) if cpu(tr) else None,
        "same_caller_cpu_us": round(cpu(same_caller), 1),
        "codec_direct_us": round(codec[0], 1), "codec_translated_us": round(codec[1], 1),
        "codec_added_us": round(codec[1] - codec[0], 1),
        "mock_cpu_us": {f"{c}->{p}": round(statistics.median(m.mock_cpu_us for m in ms), 1)
                        for (c, p), ms in measured.items() if (c, p) in (tr, same_provider)},
        "errors": sum(m.round.errors for k in (tr, same_provider, same_caller) for m in measured[k])
        + sum(single[k].errors for k in (tr, same_provider)),
    }


def format_translate_report(rows: list[dict[str, Any]]) -> str:
    lines = ["translation overhead through one gateway (one mock provider at zero latency); direct = a call of the",
             "provider's own protocol to the same provider (same mock handler); 'same caller' = the old baseline,",
             "the caller's direct call to a model of its own protocol. ratio = median over rounds [min-max];",
             "CPU = the gateway process's CPU time per call; CPU ratio = direct / translated (the throughput",
             "ratio of a gateway that is the bottleneck); codec added = in-process CPU per call of the translation",
             "over what the direct call does with the same answer (request, answer or stream meter; best of 7).",
             f"{'translated':<26}{'mode':<7}{'p50 dir.':>9}{'transl.':>9}{'added':>8}{'req/s dir.':>11}{'transl.':>9}"
             f"{'ratio':>7}{'[min-max]':>13}{'CPU/call dir.':>14}{'transl.':>9}{'added':>8}{'CPU ratio':>10}"
             f"{'same caller: ratio':>20}{'CPU':>7}{'codec added':>13}{'err':>5}"]
    for r in rows:
        span = f"[{r['ratio_min']:.2f}-{r['ratio_max']:.2f}]" if r["ratio_min"] is not None else "-"
        lines.append(
            f"{_LABEL[r['caller']] + ' -> ' + _LABEL[r['provider']]:<26}{'stream' if r['stream'] else 'unary':<7}"
            f"{r['direct_p50_ms']:>7.2f}ms{r['translated_p50_ms']:>7.2f}ms{r['added_p50_ms']:>6.2f}ms"
            f"{r['direct_rps']:>11.0f}{r['translated_rps']:>9.0f}{r['translated_vs_direct'] or 0:>7.2f}{span:>13}"
            f"{r['direct_cpu_us']:>12.0f}us{r['translated_cpu_us']:>7.0f}us{r['added_cpu_us']:>6.0f}us"
            f"{r['cpu_ratio'] or 0:>10.2f}"
            f"{r['translated_vs_same_caller'] or 0:>20.2f}{r['same_caller_cpu_us']:>5.0f}us"
            f"{r['codec_added_us']:>11.1f}us{r['errors']:>5}")
    return "\n".join(lines)
