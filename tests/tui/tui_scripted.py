"""Scripted console inputs: deterministic events and a replay engine.

``ReplayEngine`` is a ConsoleEngine whose events are whatever the test puts on its list: the
console under test is real, only its source of events is scripted, so snapshots and key
tests are deterministic. Tests of the stop itself use the real gateway (``make_gateway``).
"""

from __future__ import annotations

from collections import deque
from typing import Any, Iterable

from agentdeck.bus import Alert, Event, LimitChanged, RequestCompleted, StatsTick
from agentdeck.gateway.admin import GatewayStatus

T0 = 1_767_261_600.0  # 2026-01-01 10:00:00 UTC, fixed so snapshots never change


def status_doc(*, stopped: bool = False, stop_reason: str | None = None, keys: dict[str, dict[str, Any]] | None = None,
               hour_usd: float = 0.0, day_usd: float = 0.0, hourly_usd: float = 10.0, daily_usd: float = 50.0,
               sessions: dict[str, dict[str, Any]] | None = None) -> GatewayStatus:
    """A status document of the gateway's own type, so a change to its shape breaks these tests too."""
    return GatewayStatus.model_validate({
        "stopped": stopped, "stop_reason": stop_reason, "stopped_keys": {}, "stop": {"since": None, "actor": None},
        "spend": {"hour_usd": hour_usd, "day_usd": day_usd, "reserved_usd": 0.0, "open_reservations": 0},
        "budget": {"hourly_usd": hourly_usd, "daily_usd": daily_usd},
        "keys": {k: {"reserved_usd": 0.0, **v} for k, v in (keys or {}).items()},
        "providers": {}, "savings": {"usd": 0.0}, "routing": {}, "in_flight": 0, "uptime_s": 0.0,
        "bus": {"published": 0, "dropped": 0}, "sessions": sessions or {}})


class ReplayEngine:
    """An engine fed by the test: ``push(events)``; commands are recorded and answered like a gateway."""

    mode = "embedded"
    owns_gateway_process = True
    url = "http://127.0.0.1:8787"

    def __init__(self, events: Iterable[Event] = ()) -> None:
        self.q: deque[Event] = deque(events)
        self.commands: list[tuple[str, Any]] = []
        self.stopped = False
        self.status_doc: GatewayStatus = status_doc()
        self.rows: list[dict[str, Any]] = []
        self.hist: dict[str, Any] = {"stops": [], "alerts": []}
        self.dropped = 0

    @property
    def connected(self) -> bool:
        return True

    @property
    def generation(self) -> int:
        return 1

    @property
    def last_error(self) -> str | None:
        return None

    def push(self, events: Iterable[Event]) -> None:
        self.q.extend(events)

    def drain(self, limit: int | None = None) -> list[Event]:
        out = list(self.q)
        self.q.clear()
        return out

    async def run(self) -> None:
        return None

    async def status(self) -> GatewayStatus:
        return self.status_doc

    async def recent_requests(self, limit: int) -> list[dict[str, Any]]:
        return self.rows[:limit]

    async def history(self) -> dict[str, Any]:
        return self.hist

    async def stop(self, reason: str, key: str | None = None) -> dict[str, Any]:
        self.commands.append(("stop", reason))
        self.stopped = True
        return {"stopped": True}

    async def resume(self, key: str | None = None) -> dict[str, Any]:
        self.commands.append(("resume", key))
        self.stopped = False
        return {"stopped": False}

    async def close(self) -> None:
        self.commands.append(("close", None))


WHO = ("claude-code", "codex", "batch-pipeline", "aider")
TIERS = (("fast", "claude-haiku-4-5", "search"), ("balanced", "claude-sonnet-4-5", "tests"),
         ("smart", "claude-opus-4-5", "architecture"), ("fast", "gpt-4o-mini", "typo"),
         ("balanced", "gpt-4o", "feature"))


def make_request(i: int, *, status: int = 200, ts: float | None = None, error: str | None = None) -> RequestCompleted:
    tier, model, rule = TIERS[i % len(TIERS)]
    provider = "openai" if model.startswith("gpt") else "anthropic"
    return RequestCompleted(
        id=f"req_{i:06d}", key=WHO[i % 4], session=None, protocol="openai" if provider == "openai" else "anthropic",
        endpoint="/v1/chat/completions" if provider == "openai" else "/v1/messages", model_requested="auto",
        model=model, provider=provider, tier=tier, rule=rule, status=status, stream=i % 3 == 0,
        input_tokens=40 + i % 50, output_tokens=100 + (i * 37) % 400, cost_usd=0.0005 * (1 + i % 7),
        baseline_cost_usd=0.0012 * (1 + i % 5), latency_ms=150.0 + (i * 53) % 1800, error=error,
        ts=T0 + i * 0.5 if ts is None else ts,
    )


def make_tick(i: int, *, rps_limit: float = 20.0, rate_limited: int = 0, stopped: bool = False,
              hour: float | None = None, rps: float = 6.0) -> StatsTick:
    return StatsTick(
        rps=rps, in_flight=4, hour_usd=0.4 * i if hour is None else hour, day_usd=3.0 + 0.004 * i,
        hourly_budget_usd=50.0, daily_budget_usd=1000.0, stopped=stopped, savings_usd=0.02 * i,
        providers={
            "anthropic": {"rps_limit": rps_limit, "slots_limit": int(rps_limit) + 4, "in_flight": 3 + i % 5,
                          "queued": 0, "pace_queued": 0, "rate_limited_total": rate_limited, "throttled_total": 0,
                          "breaker": "closed", "enabled": True, "header_paced": False},
            "openai": {"rps_limit": 60.0, "slots_limit": 60, "in_flight": 2 + i % 3, "queued": 0, "pace_queued": 0,
                       "rate_limited_total": 0, "throttled_total": 0, "breaker": "closed", "enabled": True,
                       "header_paced": False},
        },
        ts=T0 + i,
    )


def scripted_events(seconds: int = 120) -> list[Event]:
    """Two minutes of traffic: calls, ticks, an AIMD cut after a 429 burst, an alert and a failure."""
    evs: list[Event] = []
    limit, r429 = 20.0, 0
    n = 0
    for s in range(seconds):
        for _ in range(2):
            evs.append(make_request(n, ts=T0 + s + 0.1, status=400 if n == 7 else 200,
                                    error="Invalid request." if n == 7 else None))
            n += 1
        if s in (60, 61, 62):
            r429 += 3
            limit = max(6.0, limit * 0.7)
            evs.append(LimitChanged(provider="anthropic", rps_limit=limit, slots_limit=int(limit) + 4,
                                    reason="congestion", ts=T0 + s))
        elif s > 62 and s % 10 == 0:
            limit += 2
            evs.append(LimitChanged(provider="anthropic", rps_limit=limit, slots_limit=int(limit) + 4,
                                    reason="recovery", ts=T0 + s))
        evs.append(make_tick(s, rps_limit=limit, rate_limited=r429))
    evs.append(Alert(severity="P1", kind="cost-anomaly", message="cost $41.20/h is 3.4x the expected $12.10/h",
                     key="batch-pipeline", ts=T0 + 90))
    evs.append(Alert(severity="P2", kind="budget-threshold", message="hourly budget 50% used", ts=T0 + 100))
    return evs


__all__ = ["ReplayEngine", "make_request", "make_tick", "scripted_events", "T0"]
