"""`agentdeck demo`: the whole system on one machine with no keys and no network.

Assembles three in-process mock providers, one per vendor (Anthropic, OpenAI and Google),
a gateway on its own thread with a config pointing at them and a throw-away data directory,
and the synthetic agents of ``agentdeck.sim.traffic``. The console (or ``--headless``) then
watches it.

The tiers name a model of each vendor, so `auto` shows routing across vendors as the defaults
do it: the fast tier's cheapest model is OpenAI's (Claude Code's fast tasks are translated to
it), the balanced tier's is Google's (every caller translated), and the smart tier is one model
for everyone, Claude Opus (the OpenAI agents translated to Anthropic). The OpenAI-style mock,
which takes every agent's fast tasks, has a hard requests/s ceiling so AIMD has a limit to find
when the scripted burst comes.

Nothing here imports Textual: the headless run and the tests use it without a terminal.
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentdeck.bus import Alert, Event, LimitChanged, Policy, ProviderThrottled, RequestCompleted, StopChanged
from agentdeck.config import TIERS, Config, parse_config
from agentdeck.sim import MockServer, MockSettings
from agentdeck.sim.traffic import Scenario, Traffic, demo_agents

DEMO_KEYS = ("claude-code", "codex", "batch-pipeline", "aider")
RPS_CEILING = 8.0
"""The OpenAI-style mock's hard requests/s limit (the fast tier's traffic lands there)."""
DEMO_TIERS: dict[str, Any] = {
    "fast": {"anthropic": "claude-haiku-4-5", "openai": "gpt-4o-mini", "gemini": "gemini-2.5-flash"},
    "balanced": {"anthropic": "claude-sonnet-4-5", "openai": "gpt-4o", "gemini": "gemini-2.5-pro"},
    "smart": "claude-opus-4-5",
}


def demo_config(openai_url: str, anthropic_url: str, data_dir: Path, base: Config | None = None,
                google_url: str | None = None) -> tuple[Config, dict[str, str]]:
    """The demo's gateway config and the agents' gateway keys (random per run, never written anywhere).

    ``google_url`` is the Gemini-style mock (the OpenAI one's URL when not given: every mock speaks all three)."""
    keys = {name: f"demo-{name}-{secrets.token_hex(6)}" for name in DEMO_KEYS}
    retry = {"max_retries": 2, "backoff_base_s": 0.2, "backoff_max_s": 2.0}
    data: dict[str, Any] = {
        "gateway": {"host": "127.0.0.1", "port": 0, "admin_token": secrets.token_urlsafe(18), "data_dir": str(data_dir),
                    "log_bodies": True, "store_flush_interval_s": 0.5, "shutdown_grace_s": 2},
        "keys": [{"name": n, "key": k, "daily_budget_usd": 150.0 if n == "batch-pipeline" else None}
                 for n, k in keys.items()],
        "budget": {"hourly_usd": 50.0, "daily_usd": 1000.0},
        "anomaly": {"baseline_window_s": 600.0, "min_baseline_usd_per_hour": 2.0},
        "providers": {
            "anthropic": {"protocol": "anthropic", "base_url": anthropic_url, "api_key": "demo-provider-key-anthropic",
                          "models": ["claude-haiku-4-5", "claude-sonnet-4-5", "claude-opus-4-5"],
                          "limits": {"rps": 60, "slots": 60}, "retry": retry},
            "openai": {"protocol": "openai", "base_url": openai_url, "api_key": "demo-provider-key-openai",
                       "models": ["gpt-4o-mini", "gpt-4o", "gpt-4.1"],
                       "limits": {"rps": 20, "slots": 24, "increase": 2, "increase_every_s": 10,
                                  "max_queue_wait_s": 5},
                       "retry": retry, "fallback": "google"},
            "google": {"protocol": "gemini", "base_url": google_url or openai_url, "api_key": "demo-provider-key-google",
                       "models": ["gemini-*"], "limits": {"rps": 60, "slots": 60}, "retry": retry},
        },
        "routing": {"tiers": DEMO_TIERS},
    }
    for k in data["keys"]:
        if k["daily_budget_usd"] is None:
            del k["daily_budget_usd"]
    if base is not None:
        data["tui"] = base.tui.model_dump()
    return parse_config(data, "<demo>"), keys


@dataclass
class DemoRig:
    """Everything the demo runs; :meth:`start` brings it up, :meth:`stop` takes it down in order."""

    base: Config | None = None
    rate: float = 1.0
    scenario: Scenario = field(default_factory=Scenario)
    keep_data: bool = False
    openai_mock: MockServer | None = None
    anthropic_mock: MockServer | None = None
    google_mock: MockServer | None = None
    gateway: Any = None  # GatewayThread
    traffic: Traffic | None = None
    cfg: Config | None = None
    data_dir: Path | None = None
    started_at: float = 0.0

    def start(self) -> "DemoRig":
        from agentdeck.gateway.server import GatewayThread

        self.data_dir = Path(tempfile.mkdtemp(prefix="agentdeck-demo-"))
        self.openai_mock = MockServer(MockSettings(token_ms=1.0, rps_limit=RPS_CEILING, seed=11)).start()
        self.anthropic_mock = MockServer(MockSettings(token_ms=1.0, seed=12)).start()
        self.google_mock = MockServer(MockSettings(token_ms=1.0, seed=13, dated_models=True)).start()
        self.cfg, keys = demo_config(self.openai_mock.url, self.anthropic_mock.url, self.data_dir, self.base,
                                     google_url=self.google_mock.url)
        self.gateway = GatewayThread(self.cfg).start()
        self.traffic = Traffic(self.gateway.url, demo_agents(keys, self.rate), self.scenario).start()
        self.started_at = time.time()
        return self

    @property
    def db_path(self) -> Path:
        from agentdeck.store import db_path

        assert self.cfg is not None
        return db_path(self.cfg.gateway.data_dir)

    def stop(self) -> None:
        if self.traffic is not None:
            self.traffic.stop()
        if self.gateway is not None:
            self.gateway.stop_quietly()
        for m in (self.openai_mock, self.anthropic_mock, self.google_mock):
            if m is not None:
                m.stop()
        if self.data_dir is not None and not self.keep_data:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> "DemoRig":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass
class DemoTally:
    """What happened during a headless run, counted from the bus (lossless subscriber)."""

    requests: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    tiers: Counter[str] = field(default_factory=Counter)
    cost_usd: float = 0.0
    baseline_usd: float = 0.0
    throttled: Counter[str] = field(default_factory=Counter)
    limit_changes: Counter[str] = field(default_factory=Counter)
    min_rps_limit: dict[str, float] = field(default_factory=dict)
    alerts: list[Alert] = field(default_factory=list)
    stops: int = 0
    failed_ids: list[str] = field(default_factory=list)

    def add(self, ev: Event) -> None:
        if isinstance(ev, RequestCompleted):
            self.requests += 1
            self.statuses[ev.status] += 1
            self.tiers[ev.tier or "other"] += 1
            self.cost_usd += ev.cost_usd
            self.baseline_usd += ev.baseline_cost_usd
            if ev.status >= 400 and ev.status not in (429,) and len(self.failed_ids) < 5:
                self.failed_ids.append(ev.id)
        elif isinstance(ev, ProviderThrottled):
            self.throttled[ev.provider] += 1
        elif isinstance(ev, LimitChanged):
            self.limit_changes[f"{ev.provider}:{ev.reason}"] += 1
            self.min_rps_limit[ev.provider] = min(self.min_rps_limit.get(ev.provider, ev.rps_limit), ev.rps_limit)
        elif isinstance(ev, Alert):
            self.alerts.append(ev)
        elif isinstance(ev, StopChanged):
            self.stops += 1


def run_headless(duration_s: float, *, base: Config | None = None, rate: float = 1.0,
                 scenario: Scenario | None = None, progress: Any = None) -> tuple[DemoTally, dict[str, Any], DemoRig]:
    """Run the demo for ``duration_s`` without a UI; returns the tally, the final /admin/status and the rig."""
    from agentdeck.gateway import admin

    rig = DemoRig(base=base, rate=rate, scenario=scenario or Scenario())
    tally = DemoTally()
    try:
        rig.start()
        sub = rig.gateway.bus.subscribe("demo-summary", maxlen=200_000, policy=Policy.LOSSLESS)
        end = time.monotonic() + duration_s
        next_note = time.monotonic() + 10
        while time.monotonic() < end:
            time.sleep(min(0.5, max(0.0, end - time.monotonic())))
            for ev in sub.drain():
                tally.add(ev)
            if progress is not None and time.monotonic() >= next_note:
                next_note += 10
                progress(f"{time.monotonic() - (end - duration_s):4.0f}s  {tally.requests} calls, "
                         f"${tally.cost_usd:.3f}, {sum(tally.throttled.values())} provider 429s, {len(tally.alerts)} alerts")

        async def read_status() -> dict[str, Any]:
            return admin.status(rig.gateway.gateway)

        status = rig.gateway.call(read_status())
        if rig.traffic is not None:
            rig.traffic.stop()
        for ev in sub.drain():
            tally.add(ev)
        return tally, status, rig
    finally:
        rig.stop()


def format_summary(tally: DemoTally, status: dict[str, Any], rig: DemoRig, duration_s: float) -> str:
    """The headless run's report, for a person reading a terminal."""
    t = tally
    ok = sum(n for s, n in t.statuses.items() if 200 <= s < 300)
    lines = [f"agentdeck demo: {duration_s:.0f} s, gateway {rig.gateway.url if rig.gateway else '?'}"]
    lines.append(f"  calls          {t.requests} ({ok} ok; statuses {dict(sorted(t.statuses.items()))})")
    tiers = sum(t.tiers[k] for k in TIERS) or 1
    lines.append("  tier mix       " + ", ".join(f"{k} {t.tiers[k] / tiers:.0%}" for k in TIERS))
    saved = t.baseline_usd - t.cost_usd
    lines.append(f"  spend          ${t.cost_usd:.4f} (all-balanced baseline ${t.baseline_usd:.4f}, saved ${saved:.4f})")
    spend, budget = status.get("spend", {}), status.get("budget", {})
    lines.append(f"  budgets        hour ${spend.get('hour_usd', 0):.4f} of ${budget.get('hourly_usd', 0):.2f}, "
                 f"day ${spend.get('day_usd', 0):.4f} of ${budget.get('daily_usd', 0):.2f}")
    for name, p in sorted((status.get("providers") or {}).items()):
        lines.append(f"  {name:<14} {t.throttled.get(name, 0)} provider 429s, limit now {p.get('rps_limit', 0):.1f} rps / "
                     f"{p.get('slots_limit', 0)} slots (lowest {t.min_rps_limit.get(name, p.get('rps_limit', 0)):.1f} rps)")
    if t.limit_changes:
        lines.append("  AIMD changes   " + ", ".join(f"{k} x{n}" for k, n in sorted(t.limit_changes.items())))
    if t.alerts:
        for a in t.alerts[:8]:
            lines.append(f"  alert          {a.severity} {a.kind}: {a.message[:100]}")
    else:
        lines.append("  alerts         none (the cost spike needs about 150 s of traffic before it can alert)")
    if t.failed_ids:
        lines.append(f"  failed calls   {', '.join(t.failed_ids)} (open one in the console with enter, then d to diagnose)")
    traffic = rig.traffic.stats.as_dict() if rig.traffic is not None else {}
    lines.append(f"  script         {traffic.get('bursts', 0)} 429 burst(s), {traffic.get('spikes', 0)} cost spike(s), "
                 f"{traffic.get('failing_sent', 0)} failing call(s)")
    return "\n".join(lines)
