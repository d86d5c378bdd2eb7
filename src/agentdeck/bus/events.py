"""The typed events every stage publishes.

Each event is a frozen-ish slotted dataclass with a ``type`` tag so it survives a trip
through JSON (``/admin/events``) and comes back as the same class on the console side.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

import orjson


@dataclass(slots=True)
class Event:
    type: ClassVar[str] = "event"
    ts: float = field(default_factory=time.time, kw_only=True)

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["type"] = self.type
        return d

    def to_json(self) -> bytes:
        """``to_dict`` as JSON, without building the dict (orjson reads slotted dataclasses itself):
        the SSE stream serialises every event on the gateway's own interpreter."""
        return b'{"type":"' + self.type.encode() + b'",' + orjson.dumps(self)[1:]


@dataclass(slots=True)
class RequestCompleted(Event):
    """One call through the gateway, finished (any outcome). The store writes it; the console lists it."""

    type: ClassVar[str] = "request"
    id: str
    key: str
    session: str | None
    protocol: str
    endpoint: str
    model_requested: str
    model: str
    provider: str
    tier: str | None
    rule: str | None
    status: int
    stream: bool
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cost_usd: float = 0.0
    baseline_cost_usd: float = 0.0
    latency_ms: float = 0.0
    estimated: bool = False
    error: str | None = None
    attempts: int = 1
    fallback_from: str | None = None
    escalations: list[str] = field(default_factory=list)
    request_body: str | None = None
    response_body: str | None = None


@dataclass(slots=True)
class LimitChanged(Event):
    """The AIMD controller moved a provider's limits (reason: 'congestion', 'recovery', 'provider-headers', ...)."""

    type: ClassVar[str] = "limit"
    provider: str
    rps_limit: float
    slots_limit: int
    reason: str


@dataclass(slots=True)
class ProviderThrottled(Event):
    """The provider answered 429/529."""

    type: ClassVar[str] = "throttled"
    provider: str
    status: int


@dataclass(slots=True)
class StopChanged(Event):
    """The emergency stop was engaged or lifted, globally (key None) or for one key/session."""

    type: ClassVar[str] = "stop"
    stopped: bool
    reason: str | None
    key: str | None
    actor: str


@dataclass(slots=True)
class Alert(Event):
    """Something an on-call engineer should see. severity: P0 (act now), P1 (soon), P2 (info)."""

    type: ClassVar[str] = "alert"
    severity: str
    kind: str
    message: str
    key: str | None = None


@dataclass(slots=True)
class Escalated(Event):
    type: ClassVar[str] = "escalated"
    request_id: str
    from_tier: str
    to_tier: str
    reason: str


@dataclass(slots=True)
class BudgetDowngrade(Event):
    type: ClassVar[str] = "downgrade"
    active: bool
    share: float
    budget: str


@dataclass(slots=True)
class StatsTick(Event):
    """Once a second: what the gateway looks like now. The console's graphs and top bar read this."""

    type: ClassVar[str] = "tick"
    rps: float
    in_flight: int
    hour_usd: float
    day_usd: float
    hourly_budget_usd: float
    daily_budget_usd: float
    stopped: bool
    providers: dict[str, dict[str, Any]] = field(default_factory=dict)
    savings_usd: float = 0.0
    bus_dropped: int = 0
    cluster: dict[str, Any] | None = None  # cluster mode: the processes (ClusterSnapshot.to_dict); None when local


EVENT_TYPES: dict[str, type[Event]] = {
    cls.type: cls
    for cls in (RequestCompleted, LimitChanged, ProviderThrottled, StopChanged, Alert, Escalated, BudgetDowngrade, StatsTick)
}


_FIELDS: dict[type[Event], frozenset[str]] = {cls: frozenset(f.name for f in dataclasses.fields(cls))
                                              for cls in EVENT_TYPES.values()}


def event_from_dict(d: dict[str, Any]) -> Event | None:
    """Rebuild an event received as JSON; unknown types (from a newer gateway) give None.

    Keys this version does not know are dropped, so an older console reads a newer gateway."""
    cls = EVENT_TYPES.get(d.get("type", ""))
    if cls is None:
        return None
    names = _FIELDS[cls]
    return cls(**{k: v for k, v in d.items() if k in names})
