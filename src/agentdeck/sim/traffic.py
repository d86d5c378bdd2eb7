"""Synthetic agents for the demo: realistic coding tasks of every tier, sent through the gateway.

Why its own thread and event loop: the traffic stands in for agents in other processes
(Claude Code, Codex, a batch pipeline). Sharing the gateway's loop would hide the cost of
the HTTP round trip; sharing the console's would make the UI a load generator. Requests go
out with aiohttp (a core dependency) in each provider's own wire format, streaming and not,
so the gateway sees exactly what an SDK would send.

The script (``Scenario``), in seconds from the start and repeating every ``cycle_s``:
- steady traffic from four agents with different tier mixes;
- a failing call (the provider answers 400) that the console can diagnose;
- a 429 burst: one agent floods the rate-limited (Anthropic-style) provider, AIMD cuts its
  limits and climbs back;
- a cost spike: an agent starts sending long smart-tier answers, which trips the anomaly
  detector's cost alert (it needs a minute of history first, so the first spike comes
  after the two-minute warm-up).

Magic words (``[mock:tokens=N]``, ``[mock:slow=MS]``, ``[mock:error=400]``) tell the mock
provider how long and how slow each answer is; see ``agentdeck.sim.mock.MAGIC_WORDS``.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

TASKS: dict[str, tuple[str, ...]] = {
    "fast": (
        "Find where the webhook retry delay is configured.",
        "List the files under src/payments that import the old http client.",
        "Fix the typo in the README install section.",
        "Rename the variable tmp_list to pending_ids in utils/batching.py.",
        "Add a docstring to parse_duration in timeutil.py.",
        "What does the --dry-run flag of the deploy script do?",
        "Sort the imports in api/routes.py.",
        "Show me the definition of UserSession.",
        "Remove unused imports in tests/test_orders.py.",
        "Grep for calls to the deprecated retry helper in the scheduler module.",
        "Bump the version in pyproject.toml to 2.4.1.",
        "Change the default timeout value in client.py to 30 seconds.",
    ),
    "balanced": (
        "Write unit tests for the invoice rounding helper, including negative amounts.",
        "Add pagination to the /orders endpoint and update its handler and serializer.",
        "Implement a retry with exponential backoff for the S3 upload helper.",
        "Fix the bug where the CSV export drops the last row when the file has no trailing newline.",
        "Add input validation to the shipping address form and show clear error messages.",
        "Write integration tests for the login flow with an expired token.",
        "Implement the --since flag for the export command.",
        "Add caching to the product lookup function with a five minute TTL.",
    ),
    "smart": (
        "Design the architecture for splitting the monolith's billing code into its own service.",
        "Investigate the production outage: checkout returns 502s since the 14:00 deploy.",
        "Plan the database migration from a single orders table to per-region sharding.",
        "Track down the race condition that makes the job scheduler run some jobs twice.",
        "Review the authentication flow for security issues in token refresh.",
        "Refactor the entire data access layer to use async sessions across all services.",
    ),
}
SYSTEM_PROMPT = "You are a careful senior engineer working in this repository. Answer with a short plan, then the change."
FAILING_TASK = "Apply the generated patch to services/billing/invoice.py and run the migration. [mock:error=400]"

# Output tokens and latency per tier: small answers are quick, design answers are long and slow.
SHAPE: dict[str, tuple[tuple[int, int], tuple[int, int]]] = {
    "fast": ((60, 260), (120, 450)),
    "balanced": ((120, 520), (350, 1200)),
    "smart": ((300, 800), (900, 2600)),
}


@dataclass
class Agent:
    """One synthetic agent: a gateway key, a protocol and a habit."""

    name: str
    secret: str
    protocol: str  # "anthropic" or "openai"
    rps: float
    mix: dict[str, float]
    stream_share: float = 0.3
    model: str = "auto"
    max_concurrency: int = 24


@dataclass
class Scenario:
    """When the interesting things happen (seconds from the start, repeating every ``cycle_s``)."""

    failing_at_s: float = 8.0
    burst_at_s: float = 25.0
    burst_s: float = 8.0
    burst_rps: float = 30.0
    burst_agent: str = "claude-code"
    spike_at_s: float = 150.0
    spike_s: float = 20.0
    spike_rps: float = 2.5
    spike_tokens: int = 2500
    spike_agent: str = "batch-pipeline"
    cycle_s: float = 300.0


@dataclass
class TrafficStats:
    sent: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    tiers: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    bursts: int = 0
    spikes: int = 0
    failing_sent: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"sent": self.sent, "statuses": dict(sorted(self.statuses.items())), "tiers": dict(self.tiers),
                "errors": dict(self.errors), "bursts": self.bursts, "spikes": self.spikes,
                "failing_sent": self.failing_sent}


def build_request(agent: Agent, text: str, *, stream: bool, tokens: int, slow_ms: int,
                  model: str | None = None) -> tuple[str, dict[str, str], dict[str, Any]]:
    """(path, headers, JSON body) of one call in the agent's wire format."""
    magic = f" [mock:tokens={tokens}] [mock:slow={slow_ms}]"
    user = text + magic
    m = model or agent.model
    if agent.protocol == "anthropic":
        headers = {"x-api-key": agent.secret, "anthropic-version": "2023-06-01", "content-type": "application/json"}
        body: dict[str, Any] = {"model": m, "max_tokens": max(256, tokens * 2), "system": SYSTEM_PROMPT,
                                "messages": [{"role": "user", "content": user}], "stream": stream}
        return "/v1/messages", headers, body
    headers = {"authorization": f"Bearer {agent.secret}", "content-type": "application/json"}
    body = {"model": m, "max_tokens": max(256, tokens * 2), "stream": stream,
            "messages": [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]}
    if stream:
        body["stream_options"] = {"include_usage": True}
    return "/v1/chat/completions", headers, body


class Traffic:
    """Runs the agents and the scenario on a thread of its own until :meth:`stop`."""

    def __init__(self, gateway_url: str, agents: list[Agent], scenario: Scenario | None = None, *,
                 seed: int = 7, time_scale: float = 1.0) -> None:
        self.url = gateway_url.rstrip("/")
        self.agents = {a.name: a for a in agents}
        self.scenario = scenario or Scenario()
        self.rng = random.Random(seed)
        self.time_scale = time_scale
        self.stats = TrafficStats()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._t0 = 0.0
        self._boost: dict[str, float] = {}
        self._inflight: set[asyncio.Task[Any]] = set()

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> "Traffic":
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            self._stop = asyncio.Event()
            ready.set()
            try:
                loop.run_until_complete(self._main())
            finally:
                loop.close()

        self._thread = threading.Thread(target=run, name="agentdeck-traffic", daemon=True)
        self._thread.start()
        ready.wait(5)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        if self._loop is not None and self._stop is not None and self._thread is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(timeout)

    def elapsed(self) -> float:
        return (time.monotonic() - self._t0) * self.time_scale if self._t0 else 0.0

    # -- the script -------------------------------------------------------------------------------
    async def _main(self) -> None:
        import aiohttp

        assert self._stop is not None
        self._t0 = time.monotonic()
        conn = aiohttp.TCPConnector(limit=256, force_close=False)
        async with aiohttp.ClientSession(connector=conn, timeout=aiohttp.ClientTimeout(total=60)) as http:
            tasks = [asyncio.create_task(self._agent_loop(http, a)) for a in self.agents.values()]
            tasks.append(asyncio.create_task(self._director(http)))
            await self._stop.wait()
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            pending = list(self._inflight)
            for t in pending:
                t.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    def _spawn(self, coro: Any) -> None:
        """Start a call as a task that :meth:`stop` can find and cancel."""
        task = asyncio.ensure_future(coro)
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)

    async def _sleep(self, s: float) -> None:
        assert self._stop is not None
        try:
            await asyncio.wait_for(self._stop.wait(), max(0.0, s / self.time_scale))
        except asyncio.TimeoutError:
            pass

    async def _director(self, http: Any) -> None:
        """Fires the scripted events at their times, every cycle."""
        sc = self.scenario
        events = sorted([(sc.failing_at_s, "fail"), (sc.burst_at_s, "burst"), (sc.spike_at_s, "spike")])
        cycle = 0
        assert self._stop is not None
        while not self._stop.is_set():
            base = cycle * sc.cycle_s
            for at, what in events:
                await self._sleep(base + at - self.elapsed())
                if self._stop.is_set():
                    return
                if what == "fail":
                    self._spawn(self._failing_call(http))
                elif what == "burst" and sc.burst_agent in self.agents:
                    self.stats.bursts += 1
                    self._spawn(self._boost_for(sc.burst_agent, sc.burst_rps, sc.burst_s))
                elif what == "spike" and sc.spike_agent in self.agents:
                    self.stats.spikes += 1
                    self._spawn(self._spike(http))
            await self._sleep(base + sc.cycle_s - self.elapsed())
            cycle += 1

    async def _boost_for(self, name: str, rps: float, seconds: float) -> None:
        self._boost[name] = rps
        await self._sleep(seconds)
        self._boost.pop(name, None)

    async def _spike(self, http: Any) -> None:
        """Expensive smart-tier answers for a while: what an agent stuck in a loop looks like on the bill."""
        sc = self.scenario
        agent = self.agents[sc.spike_agent]
        end = self.elapsed() + sc.spike_s
        assert self._stop is not None
        while self.elapsed() < end and not self._stop.is_set():
            text = self.rng.choice(TASKS["smart"])
            self._spawn(self._send(http, agent, text, "smart", tokens=sc.spike_tokens,
                                           slow_ms=self.rng.randint(800, 2000), model="smart"))
            await self._sleep(self.rng.expovariate(sc.spike_rps))

    async def _failing_call(self, http: Any) -> None:
        agent = self.agents.get("claude-code") or next(iter(self.agents.values()))
        self.stats.failing_sent += 1
        await self._send(http, agent, FAILING_TASK, "smart", tokens=200, slow_ms=300, stream=False)

    async def _agent_loop(self, http: Any, agent: Agent) -> None:
        sem = asyncio.Semaphore(agent.max_concurrency)
        tiers = list(agent.mix)
        weights = [agent.mix[t] for t in tiers]
        assert self._stop is not None
        while not self._stop.is_set():
            rate = self._boost.get(agent.name, agent.rps)
            await self._sleep(self.rng.expovariate(rate))
            if sem.locked():
                self.stats.errors["agent backlog (skipped)"] += 1
                continue
            tier = self.rng.choices(tiers, weights)[0]
            text = self.rng.choice(TASKS[tier])
            (tlo, thi), (llo, lhi) = SHAPE[tier]
            stream = self.rng.random() < agent.stream_share

            async def one(text: str = text, tier: str = tier, stream: bool = stream) -> None:
                async with sem:
                    await self._send(http, agent, text, tier, tokens=self.rng.randint(tlo, thi),
                                     slow_ms=self.rng.randint(llo, lhi), stream=stream)

            self._spawn(one())

    async def _send(self, http: Any, agent: Agent, text: str, tier: str, *, tokens: int, slow_ms: int,
                    stream: bool = False, model: str | None = None) -> int | None:
        import aiohttp

        path, headers, body = build_request(agent, text, stream=stream, tokens=tokens, slow_ms=slow_ms, model=model)
        self.stats.sent += 1
        self.stats.tiers[tier] += 1
        try:
            async with http.post(self.url + path, json=body, headers=headers) as r:
                await r.read()
                self.stats.statuses[r.status] += 1
                return int(r.status)
        except asyncio.CancelledError:
            raise
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as e:
            self.stats.errors[type(e).__name__] += 1
            return None


def demo_agents(secrets: dict[str, str], rate: float = 1.0) -> list[Agent]:
    """The four agents of the demo; ``rate`` scales their requests/s."""
    return [
        Agent("claude-code", secrets["claude-code"], "anthropic", 1.2 * rate,
              {"fast": 0.60, "balanced": 0.34, "smart": 0.06}, stream_share=0.6),
        Agent("codex", secrets["codex"], "openai", 0.8 * rate, {"fast": 0.50, "balanced": 0.44, "smart": 0.06},
              stream_share=0.5),
        Agent("batch-pipeline", secrets["batch-pipeline"], "openai", 1.5 * rate,
              {"fast": 0.85, "balanced": 0.15}, stream_share=0.0),
        Agent("aider", secrets["aider"], "anthropic", 0.4 * rate, {"fast": 0.3, "balanced": 0.5, "smart": 0.2},
              stream_share=0.3),
    ]
