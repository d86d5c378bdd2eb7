"""The console under load: key latency, its own CPU, memory over time, and whether it slows the gateway.

Why measured this way: the console's promise is "never lag behind the traffic", so the
benchmark floods it with events through the real path (a real gateway's bus, the in-process
engine, the pump, the panes) at ``events_per_s`` on top of real calls, and drives it with
real key presses through Textual's Pilot (headless: frames are composed and rendered, only
the terminal write is skipped). The console runs on the main thread, the gateway on its own
thread and the event feeder on a third, so the main thread's CPU time is the console's own
CPU. The gateway's throughput is measured under the same call load with and without the
console open.

Run: ``python -m agentdeck.bench.console --events 1000 --duration 60`` (the lead wires it as
``agentdeck bench --scenario console``). A benchmark, not a test: numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil

from agentdeck.bench.stats import percentile
from agentdeck.bus import Bus, RequestCompleted
from agentdeck.config import TuiConfig, parse_config

KEYS = ("p", "p", "2", "1", "3", "1")
PANE_OF_KEY = {"1": "routing", "2": "providers", "3": "budget"}
CALLER_KEY = "console-bench-key-0123456789"


class Feeder:
    """Publishes synthetic finished calls on a bus at a steady rate, from its own thread."""

    def __init__(self, bus: Bus, per_s: float) -> None:
        self.bus, self.per_s = bus, per_s
        self.sent = 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, name="console-bench-feeder", daemon=True)

    def start(self) -> "Feeder":
        self._t.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._t.join(5)

    def _run(self) -> None:
        models = (("fast", "claude-haiku-4-5", "anthropic"), ("balanced", "gpt-4o", "openai"),
                  ("smart", "claude-opus-4-5", "anthropic"), ("fast", "gpt-4o-mini", "openai"))
        who = ("claude-code", "codex", "batch-pipeline", "aider", "session-7f3a")
        batch = max(1, int(self.per_s / 100))  # publish in 10 ms slices
        t0 = time.perf_counter()
        for i in itertools.count():
            if self._stop.is_set():
                return
            for j in range(batch):
                n = i * batch + j
                tier, model, provider = models[n % 4]
                self.bus.publish(RequestCompleted(
                    id=f"bench_{n:08x}", key=who[n % 5], session=None, protocol=provider, endpoint="/v1/messages",
                    model_requested="auto", model=model, provider=provider, tier=tier, rule="search", status=200 if n % 50 else 429,
                    stream=False, input_tokens=40 + n % 900, output_tokens=20 + n % 700, cost_usd=0.0001 * (n % 30),
                    baseline_cost_usd=0.0002 * (n % 30), latency_ms=100.0 + n % 900))
            self.sent += batch
            delay = t0 + (i + 1) * batch / self.per_s - time.perf_counter()
            if delay > 0:
                time.sleep(delay)


class CallLoad:
    """Real calls through the gateway at a fixed concurrency, from a child process (as agents would be:
    a load generator on a thread of this process would compete with the console for the GIL)."""

    def __init__(self, url: str, concurrency: int, rate: float = 0.0, direct_url: str = "") -> None:
        self.url, self.concurrency, self.rate, self.direct_url = url, concurrency, rate, direct_url
        self.proc: subprocess.Popen[str] | None = None
        self.result: dict[str, float] = {"calls_per_s": 0.0, "p50_ms": 0.0, "p95_ms": 0.0, "errors": 0}

    def start(self) -> "CallLoad":
        if self.direct_url:
            self.proc = subprocess.Popen([sys.executable, "-m", "agentdeck.bench.console", "--load-url", self.url,
                                          "--direct-url", self.direct_url],
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        elif self.concurrency > 0:
            self.proc = subprocess.Popen([sys.executable, "-m", "agentdeck.bench.console", "--load-url", self.url,
                                          "--concurrency", str(self.concurrency), "--calls-rate", str(self.rate)],
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        return self

    def stop(self) -> dict[str, float]:
        if self.proc is not None:
            out, _ = self.proc.communicate("stop\n", timeout=30)
            self.result = json.loads(out.strip().splitlines()[-1])
        return self.result


async def _timed_call(http: Any, url: str, body: dict[str, Any], headers: dict[str, str]) -> float | None:
    """One chat call; its latency in seconds, or None if it failed."""
    import aiohttp

    t = time.perf_counter()
    try:
        async with http.post(url + "/v1/chat/completions", json=body, headers=headers) as r:
            await r.read()
            return time.perf_counter() - t if r.status == 200 else None
    except aiohttp.ClientError:
        return None


async def _load_main(url: str, concurrency: int, rate: float = 0.0) -> dict[str, float]:
    """The child process: keep ``concurrency`` calls in flight until a line arrives on stdin.

    With ``rate`` > 0 the calls start on a fixed schedule (``rate`` per second, open loop), so the
    gateway is not saturated and what changes with the console is the calls' latency."""
    import aiohttp

    body = {"model": "fast", "max_tokens": 16, "messages": [{"role": "user", "content": "list the files"}]}
    headers = {"authorization": f"Bearer {CALLER_KEY}"}
    latencies: list[float] = []
    errors = 0
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_reader(sys.stdin.fileno(), stop.set)
    t0 = time.perf_counter()
    async with aiohttp.ClientSession() as http:
        async def worker(i: int) -> None:
            nonlocal errors
            n = 0
            while not stop.is_set():
                if rate > 0:
                    due = t0 + (n * concurrency + i) / rate
                    n += 1
                    if due > time.perf_counter():
                        await asyncio.sleep(due - time.perf_counter())
                took = await _timed_call(http, url, body, headers)
                if took is None:
                    errors += 1
                else:
                    latencies.append(took)
        await asyncio.gather(*(worker(i) for i in range(concurrency)))
    wall = time.perf_counter() - t0
    return {"calls_per_s": round(len(latencies) / wall, 1), "p50_ms": round(_pct(latencies, 0.5) * 1000, 2),
            "p95_ms": round(_pct(latencies, 0.95) * 1000, 2), "errors": errors}


async def _one_caller_main(url: str, direct_url: str) -> dict[str, float]:
    """The child process in one-caller mode: the gateway issue's "added latency".

    One connection to the mock provider and one to the gateway; calls alternate between them so
    both see the same machine at the same moment, and the added latency is the difference of
    the two distributions at p50 and p99 (as ``agentdeck bench`` reports it)."""
    import aiohttp

    body = {"model": "gpt-4o-mini", "max_tokens": 16, "messages": [{"role": "user", "content": "list the files"}]}
    via_h = {"authorization": f"Bearer {CALLER_KEY}"}
    direct_h = {"authorization": "Bearer sk-bench-provider-0000"}
    via: list[float] = []
    direct: list[float] = []
    errors = 0
    stop = asyncio.Event()
    asyncio.get_running_loop().add_reader(sys.stdin.fileno(), stop.set)
    t0 = time.perf_counter()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) as a, \
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) as b:
        while not stop.is_set():
            for http, target, headers, into in ((a, direct_url, direct_h, direct), (b, url, via_h, via)):
                took = await _timed_call(http, target, body, headers)
                if took is None:
                    errors += 1
                else:
                    into.append(took)
            await asyncio.sleep(0)
    wall = time.perf_counter() - t0
    ms = lambda xs, q: round(_pct(xs, q) * 1000, 3)  # noqa: E731
    return {"calls_per_s": round(len(via) / wall, 1), "p50_ms": ms(via, 0.5), "p95_ms": ms(via, 0.95),
            "p99_ms": ms(via, 0.99), "direct_p50_ms": ms(direct, 0.5), "direct_p99_ms": ms(direct, 0.99),
            "added_p50_ms": round(ms(via, 0.5) - ms(direct, 0.5), 3),
            "added_p99_ms": round(ms(via, 0.99) - ms(direct, 0.99), 3), "errors": errors}


ADMIN_TOKEN = "console-bench-admin-0123456789"


class _Embedded:
    """The gateway on a thread of this process, as `agentdeck console` runs it by default."""

    def __init__(self, data_dir: Path, upstream: str) -> None:
        self.thread = _gateway(data_dir, upstream)
        self.url, self.data_dir = self.thread.url, data_dir

    def feeder(self, per_s: float) -> Feeder:
        return Feeder(self.thread.bus, per_s).start()

    def stop(self) -> None:
        self.thread.stop()


class _ChildFeed:
    """The event count of the feeder inside the gateway child process (it feeds all the time)."""

    def __init__(self, child: "_Child") -> None:
        self.child = child

    @property
    def sent(self) -> int:
        return self.child.count()

    def stop(self) -> None:
        pass


class _Child:
    """The gateway as a child process (`agentdeck console --gateway-process`), with the feeder in it:
    1,000 events/s on the child's bus reach the console through ``/admin/events``."""

    def __init__(self, data_dir: Path, upstream: str, per_s: float) -> None:
        self.data_dir = data_dir
        self.proc = subprocess.Popen([sys.executable, "-m", "agentdeck.bench.console", "--serve-child", upstream,
                                      "--data-dir", str(data_dir), "--events", str(per_s)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().strip()
        if not self.url.startswith("http"):
            raise RuntimeError("the gateway child process did not start")

    def count(self) -> int:
        """How many events the child's feeder has published so far (asked over its stdin)."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("count\n")
        self.proc.stdin.flush()
        return int(self.proc.stdout.readline())

    def feeder(self, per_s: float) -> _ChildFeed:
        return _ChildFeed(self)

    def stop(self) -> None:
        self.proc.communicate("stop\n", timeout=30)


def _serve_child(upstream: str, data_dir: Path, per_s: float) -> int:
    """The child process of ``--gateway-process``: a gateway and a feeder until stdin says stop."""
    gt = _gateway(data_dir, upstream)
    feeder = Feeder(gt.bus, per_s).start()
    print(gt.url, flush=True)
    for line in sys.stdin:
        if line.strip() != "count":
            break
        print(feeder.sent, flush=True)
    feeder.stop()
    gt.stop()
    return 0


def _gateway(data_dir: Path, upstream: str) -> Any:
    from agentdeck.gateway.server import GatewayThread

    cfg = parse_config({
        "gateway": {"host": "127.0.0.1", "port": 0, "admin_token": ADMIN_TOKEN,
                    "data_dir": str(data_dir)},
        "keys": [{"name": "bench", "key": CALLER_KEY}],
        "budget": {"hourly_usd": 1e6, "daily_usd": 1e7},
        "anomaly": {"enabled": False},
        "providers": {"openai": {"protocol": "openai", "base_url": upstream, "api_key": "sk-bench-provider-0000",
                                 "models": ["gpt-4o-mini", "gpt-4o", "gpt-4.1"], "limits": {"enabled": False}},
                      "anthropic": {"protocol": "anthropic", "base_url": upstream, "api_key": "sk-ant-bench-0000",
                                    "models": ["claude-haiku-4-5", "claude-sonnet-4-5", "claude-opus-4-5"],
                                    "limits": {"enabled": False}}},
    }, "<console-bench>")
    return GatewayThread(cfg).start()


def _pct(xs: list[float], q: float) -> float:
    return percentile(xs, q, empty=0.0)


def _calls_phase(gt: Any, events_per_s: float, seconds: float, concurrency: int, rate: float,
                 direct_url: str = "") -> dict[str, float]:
    """The same call load and event flood, with no console subscribed: the baseline."""
    feeder = Feeder(gt.thread.bus, events_per_s).start() if isinstance(gt, _Embedded) else None
    load = CallLoad(gt.url, concurrency, rate, direct_url).start()
    time.sleep(seconds)
    result = load.stop()
    if feeder is not None:
        feeder.stop()
    return result


async def _console_phase(gt: Any, events_per_s: float, duration_s: float, concurrency: int,
                         size: tuple[int, int], refresh_hz: float, rate: float,
                         direct_url: str = "") -> dict[str, Any]:
    from agentdeck.tui.app import ConsoleApp
    from agentdeck.tui.drive import pane_tabs, send_key
    from agentdeck.tui.engine import InProcessEngine, RemoteEngine

    proc = psutil.Process()
    engine: Any = (InProcessEngine(gt.thread, owns_gateway=False) if isinstance(gt, _Embedded)
                   else RemoteEngine(gt.url, ADMIN_TOKEN))
    app = ConsoleApp(engine, tui=TuiConfig(refresh_hz=refresh_hz), db_path=gt.data_dir / "agentdeck.db")
    key_ms: list[float] = []
    by_key: dict[str, list[float]] = {}
    effect_ms: list[float] = []
    frames = [0]
    display = app._display

    def counting_display(screen: Any, renderable: Any) -> None:
        # Called once per composed frame (the headless driver then skips the terminal write).
        if renderable is not None:
            frames[0] += 1
        display(screen, renderable)

    app._display = counting_display  # type: ignore[method-assign]

    async def press(key: str) -> float:
        """Key in through the driver, as a terminal would send it; done when its effect is on a rendered frame."""
        t0 = time.perf_counter()
        if key == "p":
            want = not app.paused
            done = lambda: app.paused == want  # noqa: E731
        else:
            done = lambda: tabs.active == PANE_OF_KEY[key]  # noqa: E731
        send_key(app, key)
        while not done():
            await asyncio.sleep(0.001)
        effect_ms.append((time.perf_counter() - t0) * 1000)
        seen = frames[0]
        while frames[0] == seen:
            await asyncio.sleep(0.001)
        return (time.perf_counter() - t0) * 1000
    rss: list[tuple[float, float]] = []
    async with app.run_test(size=size, headless=True) as pilot:
        await pilot.pause(0.5)
        tabs = pane_tabs(app)
        feeder = gt.feeder(events_per_s)
        load = CallLoad(gt.url, concurrency, rate, direct_url).start()
        await asyncio.sleep(2.0)  # warm up: tables full, graphs drawn
        events0, sent0 = app.events_seen, feeder.sent
        cpu0, wall0 = time.thread_time(), time.perf_counter()
        next_rss = wall0
        # First the console just watches (its steady cost), then someone uses it (key latency).
        passive_s = duration_s / 2
        while time.perf_counter() - wall0 < passive_s:
            rss.append((time.perf_counter() - wall0, proc.memory_info().rss / 2**20))
            await asyncio.sleep(min(5.0, passive_s))
        cpu_mid, wall_mid = time.thread_time(), time.perf_counter()
        calls_watching = load.stop()
        load = CallLoad(gt.url, concurrency, rate, direct_url).start()
        next_rss = wall_mid + 5.0
        keys = itertools.cycle(KEYS)
        while time.perf_counter() - wall0 < duration_s:
            key = next(keys)
            ms = await press(key)
            key_ms.append(ms)
            by_key.setdefault("pause" if key == "p" else PANE_OF_KEY[key], []).append(ms)
            if time.perf_counter() >= next_rss:
                rss.append((time.perf_counter() - wall0, proc.memory_info().rss / 2**20))
                next_rss += 5.0
            await asyncio.sleep(0.5)
        cpu1, wall1 = time.thread_time(), time.perf_counter()
        events = app.events_seen - events0
        sent = feeder.sent - sent0
        feeder.stop()
        calls_keys = load.stop()
        rss.append((wall1 - wall0, proc.memory_info().rss / 2**20))
        dropped = engine.dropped
    wall = wall1 - wall0
    first = rss[0][1]
    return {
        "events_per_s_sent": round(sent / wall, 1),
        "events_per_s_seen": round(events / wall, 1),
        "events_dropped": dropped,
        "key_latency_ms": {"n": len(key_ms), "p50": round(statistics.median(key_ms), 1),
                           "p95": round(_pct(key_ms, 0.95), 1), "max": round(max(key_ms), 1),
                           "p50_by_action": {k: round(statistics.median(v), 1) for k, v in sorted(by_key.items())},
                           "p50_until_state_changed": round(statistics.median(effect_ms), 1)},
        "console_cpu_cores": round((cpu_mid - cpu0) / (wall_mid - wall0), 3),
        "console_cpu_cores_while_keys": round((cpu1 - cpu_mid) / (wall1 - wall_mid), 3),
        "rss_mb": {"start": round(first, 1), "end": round(rss[-1][1], 1), "max": round(max(r for _, r in rss), 1),
                   "samples": [(round(t), round(r, 1)) for t, r in rss]},
        "calls_with_console": calls_watching,
        "calls_with_console_keys": calls_keys,
    }


def bench_console(events_per_s: float = 1000.0, duration_s: float = 60.0, *, concurrency: int = 4,
                  size: tuple[int, int] = (140, 45), calls_s: float = 10.0,
                  refresh_hz: float = TuiConfig().refresh_hz, calls_rate: float = 0.0,
                  one_caller: bool = False, gateway_process: bool = False) -> dict[str, Any]:
    """Measure the console at ``events_per_s`` for ``duration_s``; also the gateway with and without it."""
    from agentdeck.sim.mock import run_mock_process, wait_for_mock

    mock = run_mock_process()
    try:
        upstream = wait_for_mock(mock)
        with tempfile.TemporaryDirectory(prefix="agentdeck-console-bench-") as d:
            gt: Any = _Child(Path(d), upstream, events_per_s) if gateway_process else _Embedded(Path(d), upstream)
            try:
                direct = upstream if one_caller else ""
                without = _calls_phase(gt, events_per_s, calls_s, concurrency, calls_rate, direct)
                result = asyncio.run(_console_phase(gt, events_per_s, duration_s, concurrency, size, refresh_hz,
                                                    calls_rate, direct))
            finally:
                gt.stop()
    finally:
        mock.terminate()
        mock.wait(10)
    result["calls_without_console"] = without
    result.update({"events_per_s": events_per_s, "duration_s": duration_s, "terminal": f"{size[0]}x{size[1]}",
                   "refresh_hz": refresh_hz, "calls_rate": calls_rate, "concurrency": 1 if one_caller else concurrency,
                   "one_caller": one_caller, "gateway": "child process" if gateway_process else "thread",
                   "cpus": psutil.cpu_count()})
    return result


def _per_minute(samples: list[tuple[float, float]]) -> str:
    """The first RSS sample of each minute, to see whether memory levels off."""
    seen: dict[int, float] = {}
    for t, mb in samples:
        seen.setdefault(int(t // 60), mb)
    return ", ".join(f"{minute}m {mb} MB" for minute, mb in sorted(seen.items()))


def format_console_report(r: dict[str, Any]) -> str:
    k, m = r["key_latency_ms"], r["rss_mb"]
    w, c, ck = r["calls_without_console"], r["calls_with_console"], r["calls_with_console_keys"]
    growth = (m["end"] - m["start"]) / max(1.0, r["duration_s"] / 60)
    return "\n".join([
        f"console benchmark: {r['events_per_s']:.0f} events/s for {r['duration_s']:.0f} s, {r['terminal']}, "
        f"{r['refresh_hz']:g} redraws/s, gateway on a {r['gateway']}, "
        f"{r['cpus']} CPUs",
        f"  events           sent {r['events_per_s_sent']:.0f}/s, drained by the console {r['events_per_s_seen']:.0f}/s, "
        f"dropped {r['events_dropped']}",
        f"  key press        p50 {k['p50']} ms, p95 {k['p95']} ms, max {k['max']} ms over {k['n']} presses "
        f"(key handled and frame rendered; p50 by action {k['p50_by_action']})",
        f"  console CPU      {r['console_cpu_cores']:.2f} cores watching, {r['console_cpu_cores_while_keys']:.2f} cores "
        f"while switching panes twice a second (main thread; gateway and feeder run on others)",
        f"  memory (RSS)     {m['start']} MB -> {m['end']} MB (max {m['max']} MB, {growth:+.1f} MB/min)",
        *([f"  memory by minute {_per_minute(m['samples'])}"] if r["duration_s"] >= 120 else []),
        f"  gateway calls    ({'%g/s offered' % r['calls_rate'] if r['calls_rate'] else 'as fast as possible'}, "
        f"{r['concurrency']} in flight) without console {w['calls_per_s']}/s p50 {w['p50_ms']} ms p95 {w['p95_ms']} ms; "
        f"with the console watching {c['calls_per_s']}/s p50 {c['p50_ms']} ms p95 {c['p95_ms']} ms; "
        f"while panes are switched {ck['calls_per_s']}/s p50 {ck['p50_ms']} ms p95 {ck['p95_ms']} ms",
        *([f"  added latency    one caller, gateway minus direct: without console p50 {w['added_p50_ms']} ms "
           f"p99 {w['added_p99_ms']} ms; console watching p50 {c['added_p50_ms']} ms p99 {c['added_p99_ms']} ms; "
           f"panes switched p50 {ck['added_p50_ms']} ms p99 {ck['added_p99_ms']} ms"] if r.get("one_caller") else []),
    ])


def compare_console(events_per_s: float = 1000.0, duration_s: float = 30.0) -> dict[str, Any]:
    """The gateway issue's added latency with the console open, gateway on a thread and in a child process.

    Both in one run, one after the other, so the two modes see the same machine."""
    return {"thread": bench_console(events_per_s, duration_s, one_caller=True),
            "process": bench_console(events_per_s, duration_s, one_caller=True, gateway_process=True)}


def format_comparison(r: dict[str, Any]) -> str:
    lines = []
    for mode in ("thread", "process"):
        lines += [format_console_report(r[mode]), ""]
    lines.append("added latency, one caller (gateway minus direct; gateway targets: p50 <= 1 ms, p99 <= 3 ms):")
    for mode, label in (("thread", "gateway on a thread (default)"), ("process", "gateway in a child process")):
        w, c, k = (r[mode][x] for x in ("calls_without_console", "calls_with_console", "calls_with_console_keys"))
        lines.append(f"  {label:<31} p50 {w['added_p50_ms']:.2f} -> {c['added_p50_ms']:.2f} ms watching, "
                     f"{k['added_p50_ms']:.2f} ms switching panes; p99 {w['added_p99_ms']:.2f} -> "
                     f"{c['added_p99_ms']:.2f} ms watching, {k['added_p99_ms']:.2f} ms switching panes")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m agentdeck.bench.console", description=__doc__.split("\n\n")[0])
    p.add_argument("--events", type=float, default=1000.0, help="events per second fed to the console (default 1000)")
    p.add_argument("--duration", type=float, default=60.0, help="seconds under load (default 60; 600 for the memory check)")
    p.add_argument("--concurrency", type=int, default=4, help="concurrent real calls through the gateway (default 4)")
    p.add_argument("--size", default="140x45", help="terminal size WxH (default 140x45)")
    p.add_argument("--refresh-hz", type=float, default=TuiConfig().refresh_hz, help="console redraws per second")
    p.add_argument("--json", action="store_true", help="print the raw result as JSON")
    p.add_argument("--calls-rate", type=float, default=0.0,
                   help="start real calls at this fixed rate per second (default 0: as fast as --concurrency allows)")
    p.add_argument("--one-caller", action="store_true",
                   help="instead of a call load, one caller alternating between the mock provider and the gateway: "
                        "the gateway's added latency p50/p99 without and with the console")
    p.add_argument("--gateway-process", action="store_true",
                   help="run the gateway (and the event feeder) in a child process the console attaches to, "
                        "as `agentdeck console --gateway-process` does")
    p.add_argument("--serve-child", metavar="UPSTREAM", help=argparse.SUPPRESS)  # internal: the gateway child
    p.add_argument("--data-dir", help=argparse.SUPPRESS)
    p.add_argument("--load-url", help=argparse.SUPPRESS)  # internal: run as the call-load child process
    p.add_argument("--direct-url", help=argparse.SUPPRESS)  # internal: the one-caller child's direct target
    args = p.parse_args(argv)
    if args.serve_child:
        return _serve_child(args.serve_child, Path(args.data_dir), args.events)
    if args.load_url and args.direct_url:
        print(json.dumps(asyncio.run(_one_caller_main(args.load_url, args.direct_url))), flush=True)
        return 0
    if args.load_url:
        print(json.dumps(asyncio.run(_load_main(args.load_url, args.concurrency, args.calls_rate))), flush=True)
        return 0
    w, h = (int(x) for x in args.size.lower().split("x"))
    r = bench_console(args.events, args.duration, concurrency=args.concurrency, size=(w, h), refresh_hz=args.refresh_hz,
                      calls_rate=args.calls_rate, one_caller=args.one_caller,
                      gateway_process=args.gateway_process)
    if args.json:
        print(json.dumps(r, indent=2))
    else:
        print(format_console_report(r))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
