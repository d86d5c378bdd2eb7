"""Prometheus metrics, one registry per gateway (tests run many gateways in one process).

Named and typed the way Prometheus users expect: counters end in ``_total`` and only go up
(the provider's 429s and the bus's dropped events are counted elsewhere, so they are exported
as counters read at scrape time, not as gauges); units are in the names (``_seconds``,
``_usd``, ``_requests``); no ``*_created`` series (they double the series count for nothing a
dashboard uses); ``agentdeck_build_info{version}`` is 1, for joining and for spotting a rollout.
"""

from __future__ import annotations

import platform
from typing import TYPE_CHECKING, Any, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from agentdeck import __version__

if TYPE_CHECKING:
    from agentdeck.bus import RequestCompleted

disable_created_metrics()

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class _StateCollector(Collector):
    """Series that mirror the gateway's state, built from the last ``refresh()`` at scrape time.

    Why a collector and not Gauge objects: two of them are counters kept by other parts (the
    limiter's 429 count, the bus's drop count), which a prometheus_client Counter cannot be
    set to; and a provider that disappears from the config disappears from the output."""

    def __init__(self) -> None:
        self.providers: dict[str, dict[str, Any]] = {}
        self.stopped = False
        self.spend: dict[str, float] = {}
        self.savings = 0.0
        self.dropped = 0

    def collect(self) -> Iterator[Metric]:
        in_flight = GaugeMetricFamily("agentdeck_in_flight_requests", "Upstream calls in flight", labels=["provider"])
        rps = GaugeMetricFamily("agentdeck_limit_requests_per_second", "Current AIMD requests/s limit", labels=["provider"])
        slots = GaugeMetricFamily("agentdeck_limit_slots", "Current AIMD limit of upstream calls in flight",
                                  labels=["provider"])
        limited = CounterMetricFamily("agentdeck_provider_rate_limited", "429/529 answers from the provider",
                                      labels=["provider"])
        for name, s in sorted(self.providers.items()):
            in_flight.add_metric([name], float(s.get("in_flight", 0)))
            rps.add_metric([name], float(s.get("rps_limit", 0)))
            slots.add_metric([name], float(s.get("slots_limit", 0)))
            limited.add_metric([name], float(s.get("rate_limited_total", 0)))
        yield from (in_flight, rps, slots, limited)
        yield GaugeMetricFamily("agentdeck_kill_switch", "1 while the global emergency stop is engaged",
                                value=1.0 if self.stopped else 0.0)
        yield GaugeMetricFamily("agentdeck_spend_hour_usd", "Spend in the last 60 minutes, USD",
                                value=float(self.spend.get("hour_usd", 0.0)))
        yield GaugeMetricFamily("agentdeck_spend_day_usd", "Spend in the last 24 hours, USD",
                                value=float(self.spend.get("day_usd", 0.0)))
        yield GaugeMetricFamily("agentdeck_savings_usd", "Baseline cost minus real cost since start, USD",
                                value=float(self.savings))
        yield CounterMetricFamily("agentdeck_bus_dropped", "Events dropped or coalesced by slow subscribers",
                                  value=float(self.dropped))


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("agentdeck_requests_total", "Calls through the gateway", ["provider", "model", "tier", "status"], registry=r)
        self.tokens = Counter("agentdeck_tokens_total", "Tokens by direction", ["model", "direction"], registry=r)
        self.cost = Counter("agentdeck_cost_usd_total", "Spend, USD", ["model", "key"], registry=r)
        self.baseline = Counter("agentdeck_baseline_cost_usd_total", "What the same tokens would cost on the balanced tier, USD", registry=r)
        self.latency = Histogram("agentdeck_request_latency_seconds", "Whole-call latency", ["provider"], buckets=_LATENCY_BUCKETS, registry=r)
        self.throttled = Counter("agentdeck_gateway_throttled_total", "429s the gateway gave callers (queue wait exceeded)", ["provider"], registry=r)
        self.refused = Counter("agentdeck_refused_total", "Calls refused by the gateway", ["reason"], registry=r)
        self.escalations = Counter("agentdeck_escalations_total", "Re-asks one tier up", ["from_tier", "reason"], registry=r)
        self.build_info = Gauge("agentdeck_build_info", "Always 1; the labels say which build serves",
                                ["version", "python"], registry=r)
        self.build_info.labels(__version__, platform.python_version()).set(1)
        self._state = _StateCollector()
        r.register(self._state)
        self._children: dict[tuple[Any, ...], tuple[Any, ...]] = {}

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
        """State the scrape mirrors; called when /metrics is scraped, not per request."""
        st = self._state
        st.providers, st.stopped, st.spend, st.savings, st.dropped = providers, stopped, spend, savings, dropped

    def render(self) -> bytes:
        return generate_latest(self.registry)
