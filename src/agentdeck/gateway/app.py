"""The gateway: the ASGI application and the objects one gateway owns.

``Gateway`` composes the stages (keys, kill switch, router, limiters, ledger, store, bus,
metrics) and dispatches HTTP requests to the client endpoints (``proxy``) or the
operations endpoints (``admin``). It is served by uvicorn (``server``), either headless or
on its own thread beside the console.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import secrets
import sys
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import aiohttp

from agentdeck.budget.alerts import AlertSink
from agentdeck.budget.anomaly import AnomalyDetector
from agentdeck.budget.killswitch import KillSwitch
from agentdeck.budget.ledger import Ledger
from agentdeck.budget.sessions import SessionRegistry
from agentdeck.budget.caps import model_output_limit
from agentdeck.bus import Alert, Bus, RequestCompleted, StatsTick
from agentdeck.config import Config
from agentdeck.gateway import admin, anthropic_wire, openai_wire, proxy
from agentdeck.gateway.http import Receive, Scope, Send, send_bytes
from agentdeck.gateway.metrics import Metrics
from agentdeck.gateway.upstream import make_session
from agentdeck.limits import ProviderLimiter, RetryPolicy
from agentdeck.pricing import PriceTable, Usage
from agentdeck.routing import DowngradeWatch, Router
from agentdeck.routing.savings import SavingsTracker
from agentdeck.store import Store, db_path

_CLIENT_ROUTES = {
    "/v1/chat/completions": openai_wire,
    "/v1/responses": openai_wire,
    "/v1/messages": anthropic_wire,
    "/v1/messages/count_tokens": anthropic_wire,
}
_SECRET_RE = re.compile(r"(sk-[A-Za-z0-9_\-]{8,}|sk-ant-[A-Za-z0-9_\-]{8,}|Bearer\s+[A-Za-z0-9._\-]{8,})")


@dataclass(frozen=True, slots=True)
class Identity:
    """Who is calling: the configured key's name, and the `agentdeck run` session if any."""

    key: str
    session: str | None = None

    @property
    def ledger_key(self) -> str:
        return self.session or self.key


class Gateway:
    """One gateway: its state, its lifecycle and its ASGI entry point."""

    def __init__(self, cfg: Config, *, bus: Bus | None = None, alerts_to_stderr: bool = False) -> None:
        self.cfg = cfg
        self.bus = bus or Bus()
        self.prices = PriceTable(cfg)
        self.metrics = Metrics()
        self.wires = {"openai": openai_wire, "anthropic": anthropic_wire}
        self.store = Store(db_path(cfg.gateway.data_dir), self.bus, cfg.gateway.store_flush_interval_s)
        self.limiters = {name: ProviderLimiter(name, p.limits, self.bus, breaker=p.breaker) for name, p in cfg.providers.items()}
        self.retry = {name: RetryPolicy(p.retry) for name, p in cfg.providers.items()}
        self.ledger = Ledger(cfg, self.bus, on_daily_exhausted=self._auto_stop)
        self.killswitch = KillSwitch(self.bus, self.store)
        self.anomaly = AnomalyDetector(cfg.anomaly, self.bus)
        self.admin_token = cfg.gateway.admin_token or secrets.token_urlsafe(24)
        self.alerts = AlertSink(cfg.alerts, self.bus, stderr=alerts_to_stderr, redact=self.secrets())
        self.sessions = SessionRegistry(reserved_names={k.name for k in cfg.keys})
        self.router = Router(cfg)
        self.downgrade = DowngradeWatch(cfg.routing.downgrade_at)
        self._keys = cfg.key_by_secret()
        self._open = not cfg.keys
        self._model_provider: dict[tuple[str, str], str | None] = {}
        balanced = cfg.routing.tiers["balanced"]
        self._baseline_models = {"openai": balanced.openai, "anthropic": balanced.anthropic}
        self._ids = itertools.count(1)
        self._id_prefix = "req_" + os.urandom(4).hex()
        self._unpriced_warned: set[str] = set()
        self._recent: deque[float] = deque(maxlen=4096)
        self.in_flight = 0
        self.savings = SavingsTracker()
        self.http: aiohttp.ClientSession
        self._tick_task: asyncio.Task[None] | None = None
        self.started_at = time.time()

    # -- lifecycle ----------------------------------------------------------------------
    async def startup(self) -> None:
        await self.store.open()
        await self.ledger.load(self.store)
        await self.killswitch.load()
        for row in await self.store.sessions():
            self.sessions.restore(row["name"], row["digest"], row["parent_key"], row["budget_usd"], row["created"])
            if row["budget_usd"] is not None:
                self.ledger.set_key_budget(row["name"], float(row["budget_usd"]))
        self.http = make_session(self.cfg)
        await self.alerts.start()
        self._tick_task = asyncio.create_task(self._tick(), name="stats-tick")

    async def shutdown(self) -> None:
        if self._tick_task is not None:
            self._tick_task.cancel()
        await self.alerts.stop()
        await self.http.close()
        await self.store.close()

    async def _auto_stop(self, reason: str) -> None:
        """The ledger calls this when the daily budget is gone and auto-stop is on."""
        if not self.killswitch.state()["stopped"]:
            await self.killswitch.stop(reason, key=None, actor="auto")

    async def _tick(self) -> None:
        """Publish a StatsTick once a second: the console's graphs and top bar read it."""
        while True:
            await asyncio.sleep(1.0)
            try:
                self.bus.publish(self.stats_tick())
                change = self.downgrade.update(self.ledger.share_used(), "hourly/daily")
                if change is not None:
                    self.bus.publish(change)
            except Exception as e:  # a broken tick must not stop the gateway; say so once a second
                print(f"agentdeck: stats tick failed: {e!r}", file=sys.stderr)

    def stats_tick(self) -> StatsTick:
        now = time.time()
        recent = self._recent
        while recent and recent[0] < now - 1.0:
            recent.popleft()
        snap = self.ledger.snapshot()
        return StatsTick(
            rps=float(len(recent)), in_flight=self.in_flight, hour_usd=snap["hour_usd"], day_usd=snap["day_usd"],
            hourly_budget_usd=snap["hourly_usd"], daily_budget_usd=snap["daily_usd"],
            stopped=self.killswitch.state()["stopped"], providers=self.provider_status(),
            savings_usd=self.savings.savings_usd, bus_dropped=self.bus.dropped,
        )

    # -- lookups used on the request path --------------------------------------------------
    def new_request_id(self) -> str:
        return f"{self._id_prefix}{next(self._ids):06x}"

    def authenticate(self, secret: str) -> Identity | None:
        k = self._keys.get(secret) if secret else None
        if k is not None:
            return Identity(k.name)
        s = self.sessions.lookup(secret) if secret else None
        if s is not None:
            return Identity(s.parent_key or "session", s.name)
        return Identity("anonymous") if self._open else None

    def provider_for(self, model: str, protocol: str) -> str | None:
        key = (model, protocol)
        try:
            return self._model_provider[key]
        except KeyError:
            pass
        found = None
        for name, p in self.cfg.providers.items():
            if p.protocol == protocol and model in p.models:
                found = name
                break
        self._model_provider[key] = found
        return found

    def output_limit(self, model: str) -> int | None:
        p = self.cfg.prices.get(model)
        if p is not None and p.max_output_tokens:
            return p.max_output_tokens
        return model_output_limit(model)

    def baseline_cost(self, protocol: str, usage: Usage) -> float:
        """What the same tokens would have cost on the balanced tier (the savings baseline)."""
        model = self._baseline_models.get(protocol)
        return self.prices.cost(model, usage) if model else 0.0

    def warn_unpriced(self, model: str) -> None:
        if model not in self._unpriced_warned:
            self._unpriced_warned.add(model)
            self.bus.publish(Alert(severity="P1", kind="unpriced-model",
                                   message=f"model '{model}' has no price; charging the default "
                                           f"${self.prices.default.input}/${self.prices.default.output} per Mtok"))

    def request_finished(self, ev: RequestCompleted) -> None:
        self._recent.append(ev.ts)
        if ev.cost_usd:
            self.savings.record(ev.tier, ev.rule, ev.cost_usd, ev.baseline_cost_usd, ev.escalations,
                                ev.input_tokens + ev.output_tokens)
        self.metrics.observe_request(ev)
        self.anomaly.observe(ev.session or ev.key, ev.cost_usd)
        self.bus.publish(ev)

    def request_refused(self, ev: RequestCompleted) -> None:
        """A call the gateway answered itself (stop, budget, bad input): listed and stored, never priced."""
        self._recent.append(ev.ts)
        self.bus.publish(ev)

    def redact_text(self, raw: bytes | str) -> str:
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        for secret in self.secrets():
            text = text.replace(secret, "[redacted]")
        return _SECRET_RE.sub("[redacted]", text)

    def redact_body(self, body: dict[str, Any]) -> str:
        import orjson

        return self.redact_text(orjson.dumps(body))

    def secrets(self) -> list[str]:
        """Every secret the gateway knows, for redaction (provider keys, gateway keys, the admin token)."""
        out = [p.api_key for p in self.cfg.providers.values() if len(p.api_key) >= 6]
        out += [k.key for k in self.cfg.keys if len(k.key) >= 6]
        out.append(self.admin_token)
        return out

    def provider_status(self) -> dict[str, dict[str, Any]]:
        return {name: lim.snapshot() for name, lim in self.limiters.items()}

    # -- ASGI -----------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            path = scope["path"]
            wire = _CLIENT_ROUTES.get(path)
            if wire is not None:
                if scope["method"] != "POST":
                    await send_bytes(send, 405, wire.error_body(405, f"use POST for {path}"),
                                     {"x-agentdeck-request-id": self.new_request_id(), "x-agentdeck-model": "-",
                                      "x-agentdeck-tier": "none", "allow": "POST"})
                    return
                self.in_flight += 1
                try:
                    await proxy.handle(self, scope, receive, send, wire, path)
                finally:
                    self.in_flight -= 1
                return
            await admin.handle(self, scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as e:
                    await send({"type": "lifespan.startup.failed", "message": str(e)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif msg["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

