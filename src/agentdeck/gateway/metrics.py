"""Prometheus metrics, one registry per gateway (tests run many gateways in one process)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

if TYPE_CHECKING:
    from agentdeck.bus import RequestCompleted

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("agentdeck_requests_total", "Calls through the gateway", ["provider", "model", "tier", "status"], registry=r)
        self.tokens = Counter("agentdeck_tokens_total", "Tokens by direction", ["model", "direction"], registry=r)
        self.cost = Counter("agentdeck_cost_usd_total", "Spend in USD", ["model", "key"], registry=r)
        self.baseline = Counter("agentdeck_baseline_cost_usd_total", "What the same tokens would cost on the balanced tier", registry=r)
        self.latency = Histogram("agentdeck_request_latency_seconds", "Whole-call latency", ["provider"], buckets=_LATENCY_BUCKETS, registry=r)
        self.in_flight = Gauge("agentdeck_in_flight", "Upstream calls in flight", ["provider"], registry=r)
        self.rps_limit = Gauge("agentdeck_rps_limit", "Current AIMD requests/s limit", ["provider"], registry=r)
        self.slots_limit = Gauge("agentdeck_slots_limit", "Current AIMD in-flight limit", ["provider"], registry=r)
        self.rate_limited = Gauge("agentdeck_provider_rate_limited_total", "429/529 answers from the provider", ["provider"], registry=r)
        self.throttled = Counter("agentdeck_gateway_throttled_total", "429s the gateway gave callers (queue wait exceeded)", ["provider"], registry=r)
        self.refused = Counter("agentdeck_refused_total", "Calls refused by the gateway", ["reason"], registry=r)
        self.kill_switch = Gauge("agentdeck_kill_switch", "1 while the global emergency stop is engaged", registry=r)
        self.spend_hour = Gauge("agentdeck_spend_hour_usd", "Spend in the hourly window", registry=r)
        self.spend_day = Gauge("agentdeck_spend_day_usd", "Spend in the daily window", registry=r)
        self.savings = Gauge("agentdeck_savings_usd", "Baseline cost minus real cost since start", registry=r)
        self.escalations = Counter("agentdeck_escalations_total", "Re-asks one tier up", ["from_tier", "reason"], registry=r)
        self._children: dict[tuple[Any, ...], tuple[Any, ...]] = {}
        self.bus_dropped = Gauge("agentdeck_bus_dropped_total", "Events dropped or coalesced by slow subscribers", registry=r)

    def observe_request(self, ev: "RequestCompleted") -> None:
        """Count one finished call. Labelled children are cached: ``labels()`` is too slow per request."""
        ck = (ev.provider, ev.model, ev.tier or "", ev.status, ev.key)
        children = self._children.get(ck)
        if children is None:
            children = self._children[ck] = (
                self.requests.labels(ev.provider, ev.model, ev.tier or "", str(ev.status)),
                self.tokens.labels(ev.model, "input"), self.tokens.labels(ev.model, "output"),
                self.cost.labels(ev.model, ev.key), self.latency.labels(ev.provider))
        requests, tok_in, tok_out, cost, latency = children
        requests.inc()
        if ev.input_tokens or ev.output_tokens:
            tok_in.inc(ev.input_tokens + ev.cache_read_tokens + ev.cache_write_tokens)
            tok_out.inc(ev.output_tokens)
        if ev.cost_usd:
            cost.inc(ev.cost_usd)
        if ev.baseline_cost_usd:
            self.baseline.inc(ev.baseline_cost_usd)
        latency.observe(ev.latency_ms / 1000.0)

    def refresh(self, providers: dict[str, dict[str, Any]], stopped: bool, spend: dict[str, float], savings: float, dropped: int) -> None:
        """Gauges that mirror state; called when /metrics is scraped, not per request."""
        for name, s in providers.items():
            self.in_flight.labels(name).set(s.get("in_flight", 0))
            self.rps_limit.labels(name).set(s.get("rps_limit", 0))
            self.slots_limit.labels(name).set(s.get("slots_limit", 0))
            self.rate_limited.labels(name).set(s.get("rate_limited_total", 0))
        self.kill_switch.set(1 if stopped else 0)
        self.spend_hour.set(spend.get("hour_usd", 0.0))
        self.spend_day.set(spend.get("day_usd", 0.0))
        self.savings.set(savings)
        self.bus_dropped.set(dropped)

    def render(self) -> bytes:
        return generate_latest(self.registry)
