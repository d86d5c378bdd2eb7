"""Accounting: what a call cost, and telling everyone it happened (metrics, savings, anomaly, bus).

Nothing here writes to disk: the finished call goes on the bus and the store writes it
in a batch later, so the request path never waits for SQLite.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Callable

from agentdeck.budget.anomaly import AnomalyDetector
from agentdeck.bus import Alert, Bus, Escalated, RequestCompleted
from agentdeck.gateway.call import Call, Seen
from agentdeck.gateway.metrics import Metrics
from agentdeck.gateway.routing import Escalation
from agentdeck.pricing import PriceTable, Usage
from agentdeck.routing.savings import SavingsTracker
from agentdeck.wire import Endpoint, StreamMeter, WireProtocol
from agentdeck.wire.estimate import BYTES_PER_TOKEN


class AccountingStage:
    def __init__(self, *, prices: PriceTable, metrics: Metrics, bus: Bus, savings: SavingsTracker,
                 anomaly: AnomalyDetector, baseline_models: dict[str, str | None], log_bodies: bool,
                 redact: Callable[[bytes | str], str]) -> None:
        self._prices = prices
        self._metrics = metrics
        self._bus = bus
        self._savings = savings
        self._anomaly = anomaly
        self._baseline = baseline_models
        self._log_bodies = log_bodies
        self._redact = redact
        self._unpriced_warned: set[str] = set()
        self.recent: deque[float] = deque(maxlen=4096)
        """Finish times of the last calls, for the requests/s figure of the stats tick."""

    # -- cost ----------------------------------------------------------------------------
    def add_usage(self, call: Call, usage: Usage) -> None:
        u = call.usage
        u.input_tokens += usage.input_tokens
        u.output_tokens += usage.output_tokens
        u.cache_read_tokens += usage.cache_read_tokens
        u.cache_write_tokens += usage.cache_write_tokens
        u.cache_write_1h_tokens += usage.cache_write_1h_tokens
        u.reasoning_tokens += usage.reasoning_tokens
        call.cost += self.price(call.route.model, call.provider, usage)

    def price(self, model: str, provider: str, usage: Usage) -> float:
        price = self._prices.get(model, provider)
        if not price.known:
            self._warn_unpriced(model)
        return price.cost(usage)

    def add_unary(self, call: Call, usage: Usage | None, body_bytes: int) -> None:
        """A whole answer's usage; an answer without usage is estimated (and marked so)."""
        if usage is None:
            usage = Usage(input_tokens=call.context_tokens,
                          output_tokens=min(call.max_tokens, max(1, body_bytes // BYTES_PER_TOKEN)))
            call.estimated = True
        self.add_usage(call, usage)

    def add_stream(self, call: Call, meter: StreamMeter) -> None:
        """A stream's usage; a stream cut before its usage arrived is estimated from its text, never
        above the call's token limit (the provider stops there)."""
        usage = meter.usage
        est_out = min(call.max_tokens, (meter.text_chars + BYTES_PER_TOKEN - 1) // BYTES_PER_TOKEN)
        if usage is None:
            usage = Usage(input_tokens=call.context_tokens, output_tokens=est_out)
            call.estimated = True
        elif not meter.done:  # cut, stopped, or ended in a provider error: the usage so far is not final
            usage.output_tokens = max(usage.output_tokens, est_out)
            call.estimated = True
        self.add_usage(call, usage)

    def _warn_unpriced(self, model: str) -> None:
        if model not in self._unpriced_warned:
            self._unpriced_warned.add(model)
            d = self._prices.default
            self._bus.publish(Alert(severity="P1", kind="unpriced-model",
                                    message=f"model '{model}' has no price; charging the default "
                                            f"${d.input}/${d.output} per Mtok"))

    # -- events --------------------------------------------------------------------------
    def escalated(self, call: Call, nxt: Escalation, problem: str) -> None:
        self._bus.publish(Escalated(request_id=call.rid, from_tier=call.route.tier or "", to_tier=nxt.route.tier or "",
                                    reason=problem))
        self._metrics.escalations.labels(call.route.tier, problem).inc()
        call.escalations.append(f"{call.route.tier}->{nxt.route.tier}: {problem}")

    def finished(self, call: Call) -> None:
        """Publish a finished call (every exit path runs this once)."""
        baseline_model = self._baseline.get(call.wire.name)
        baseline = self._prices.cost(baseline_model, call.usage) if baseline_model else 0.0
        log = self._log_bodies
        ev = RequestCompleted(
            id=call.rid, key=call.ident.key, session=call.ident.session, protocol=call.wire.name,
            endpoint=call.endpoint, model_requested=call.parsed.model, model=call.route.model,
            provider=call.provider, tier=call.route.tier, rule=call.route.rule, status=call.status or 500,
            stream=call.parsed.stream, input_tokens=call.usage.input_tokens, output_tokens=call.usage.output_tokens,
            cache_read_tokens=call.usage.cache_read_tokens, cache_write_tokens=call.usage.cache_write_tokens,
            cost_usd=call.cost, baseline_cost_usd=baseline, latency_ms=(time.perf_counter() - call.t0) * 1000.0,
            estimated=call.estimated, error=call.error, attempts=call.attempts, fallback_from=call.fallback_from,
            escalations=call.escalations,
            request_body=self._redact(call.parsed.raw) if log else None,
            response_body=self._redact(call.response_text) if log and call.response_text is not None else None,
        )
        self.recent.append(ev.ts)
        if ev.cost_usd:
            self._savings.record(ev.tier, ev.rule, ev.cost_usd, ev.baseline_cost_usd, ev.escalations,
                                 ev.input_tokens + ev.output_tokens)
        self._metrics.observe_request(ev)
        self._anomaly.observe(ev.session or ev.key, ev.cost_usd)
        self._bus.publish(ev)

    def refused(self, rid: str, wire: WireProtocol, endpoint: Endpoint, seen: Seen, status: int, code: str | None,
                error: str, t0: float) -> None:
        """A call the gateway answered itself (stop, budget, bad input): counted, and listed and stored
        when the caller is known; never priced."""
        self._metrics.refused.labels(code or str(status)).inc()
        if seen.ident is None:
            return
        ev = RequestCompleted(
            id=rid, key=seen.ident.key, session=seen.ident.session, protocol=wire.name, endpoint=endpoint,
            model_requested=seen.model_requested or "-", model=seen.headers["x-agentdeck-model"], provider="",
            tier=seen.route_tier, rule=None, status=status, stream=seen.stream, error=error[:200],
            attempts=0, latency_ms=(time.perf_counter() - t0) * 1000.0)
        self.recent.append(ev.ts)
        self._bus.publish(ev)
