"""The gateway: the composition root and the ASGI dispatch.

``Gateway`` builds each stage once with what it needs (keys, kill switch, router,
limiters, ledger, store, bus, metrics) and hands client calls to the ``Pipeline``, and
everything else to the operations endpoints (``admin``). It is served by uvicorn
(``server``), either headless or on its own thread beside the console.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import secrets
import sys
import time
from typing import Any

import orjson

from agentdeck.budget.alerts import AlertSink
from agentdeck.budget.anomaly import AnomalyDetector
from agentdeck.budget.killswitch import KillSwitch
from agentdeck.budget.ledger import Ledger
from agentdeck.budget.sessions import SessionRegistry
from agentdeck.bus import Bus, StatsTick
from agentdeck.config import Config
from agentdeck.gateway import admin
from agentdeck.gateway.accounting import AccountingStage
from agentdeck.gateway.admission import AdmissionStage, TokenCaps
from agentdeck.gateway.call import NO_TIER, Identity
from agentdeck.gateway.http import Receive, Scope, Send, send_bytes
from agentdeck.gateway.metrics import Metrics
from agentdeck.gateway.pipeline import Pipeline
from agentdeck.gateway.reservation import ReservationStage
from agentdeck.gateway.routing import RoutingStage
from agentdeck.gateway.upstream import UpstreamStage, make_session
from agentdeck.limits import ProviderLimiter, RetryPolicy
from agentdeck.pricing import PriceTable
from agentdeck.providers import provider_warnings
from agentdeck.routing import DowngradeWatch, Router
from agentdeck.routing.savings import SavingsTracker
from agentdeck.state import StateBackend
from agentdeck.state.backend import make_backend
from agentdeck.state.processes import ProcessSample, overlay_limits, rate_last_second
from agentdeck.store import Store, db_path
from agentdeck.wire import BY_PATH, PROVIDER_WIRES, gemini

_SECRET_RE = re.compile(r"(sk-[A-Za-z0-9_\-]{8,}|sk-ant-[A-Za-z0-9_\-]{8,}|Bearer\s+[A-Za-z0-9._\-]{8,})")

_GEMINI_PREFIXES = ("/v1beta/models/", "/v1/models/")

__all__ = ["Gateway", "Identity"]


class Gateway:
    """One gateway: its state, its stages, its lifecycle and its ASGI entry point."""

    def __init__(self, cfg: Config, *, bus: Bus | None = None, alerts_to_stderr: bool = False) -> None:
        self.cfg = cfg
        self.bus = bus or Bus()
        self.prices = PriceTable(cfg)
        self.metrics = Metrics()
        self.wires = PROVIDER_WIRES
        self.store = Store(db_path(cfg.gateway.data_dir), self.bus, cfg.gateway.store_flush_interval_s)
        self.limiters = {name: ProviderLimiter(name, p.limits, self.bus, breaker=p.breaker, fallback=p.fallback)
                         for name, p in cfg.providers.items()}
        self.retry = {name: RetryPolicy(p.retry) for name, p in cfg.providers.items()}
        self.ledger = Ledger(cfg, self.bus, on_daily_exhausted=self._auto_stop)
        self.killswitch = KillSwitch(self.bus, self.store)
        self.anomaly = AnomalyDetector(cfg.anomaly, self.bus)
        self.admin_token = cfg.gateway.admin_token or secrets.token_urlsafe(24)
        self.alerts = AlertSink(cfg.alerts, self.bus, stderr=alerts_to_stderr, redact=self.secrets())
        self.sessions = SessionRegistry(reserved_names={k.name for k in cfg.keys})
        self.router = Router(cfg, prices=self.prices)  # the cross-vendor tier choice warms the gateway's prices
        self.matcher = self.router.matcher  # one cache of which provider serves which model
        self.downgrade = DowngradeWatch(cfg.routing.downgrade_at)
        self.savings = SavingsTracker()
        self._ids = itertools.count(1)
        self._id_prefix = "req_" + os.urandom(4).hex()
        self._secrets = self.secrets()
        self.in_flight = 0
        self._tick_task: asyncio.Task[None] | None = None
        self.started_at = time.time()
        self.address = ""  # the URL this process listens on (the server sets it; the cluster's process table shows it)

        self.state: StateBackend = make_backend(cfg, self.ledger, self.killswitch, self.limiters, self.bus, self.sessions)
        balanced = cfg.routing.tiers["balanced"]
        caps = TokenCaps(cfg.caps, self.output_limit)
        self.admission = AdmissionStage(
            keys=cfg.key_by_secret(), sessions=self.state.sessions, open_access=not cfg.keys, stop=self.state.stop,
            anomaly=self.anomaly, throttle_rps=cfg.anomaly.throttle_rps, caps=caps,
            max_body_bytes=cfg.gateway.max_body_bytes)
        self.routing = RoutingStage(self.router, self.matcher, self.state.spend.share_used, caps, cfg.routing.escalate,
                                    protocols={name: p.protocol for name, p in cfg.providers.items()}
                                    if cfg.routing.translate else None)
        self.reservation = ReservationStage(self.state.spend, self.prices)
        self.upstream = UpstreamStage(cfg.providers, self.state.limits, self.retry)
        self.accounting = AccountingStage(
            prices=self.prices, metrics=self.metrics, bus=self.bus, savings=self.savings, anomaly=self.anomaly,
            baseline_models={"openai": balanced.openai, "anthropic": balanced.anthropic},
            log_bodies=cfg.gateway.log_bodies, redact=self.redact_text)
        self.pipeline = Pipeline(
            admission=self.admission, routing=self.routing, reservation=self.reservation, upstream=self.upstream,
            accounting=self.accounting, stop=self.state.stop, metrics=self.metrics,
            new_request_id=self.new_request_id, redact=self.redact_text, log_bodies=cfg.gateway.log_bodies)

    # -- lifecycle ----------------------------------------------------------------------
    async def startup(self) -> None:
        await self.store.open()
        await self.ledger.load(self.store)
        await self.killswitch.load()
        used = await self.store.session_request_counts()
        for row in await self.store.sessions():
            self.sessions.restore(row["name"], row["digest"], row["parent_key"], row["budget_usd"], row["created"],
                                  row.get("max_requests"), used.get(row["name"], 0))
            if row["budget_usd"] is not None:
                self.ledger.set_key_budget(row["name"], float(row["budget_usd"]))
        # A shared backend joins the cluster once the stops and sessions are loaded (it seeds Redis with them),
        # before the first call: a stop taken before any call reaches the cluster at once.
        start = getattr(self.state, "start", None)
        if start is not None:
            await start()
        for line in provider_warnings(self.cfg):
            print(f"agentdeck: warning: {line}", file=sys.stderr)
        self.upstream.http = make_session(self.cfg)
        await self.alerts.start()
        self._tick_task = asyncio.create_task(self._tick(), name="stats-tick")
        self.state.registry.start(self._process_sample)  # this process's row in the cluster (a heartbeat task)

    async def shutdown(self) -> None:
        if self._tick_task is not None:
            self._tick_task.cancel()
        await self.alerts.stop()
        close = getattr(self.state, "close", None)
        if close is not None:
            await close()
        if self.upstream.http is not None:
            await self.upstream.http.close()
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
                change = self.downgrade.update(self.state.spend.share_used(), "hourly/daily")
                if change is not None:
                    self.bus.publish(change)
            except Exception as e:  # a broken tick must not stop the gateway; say so once a second
                print(f"agentdeck: stats tick failed: {e!r}", file=sys.stderr)

    def stats_tick(self) -> StatsTick:
        now = time.time()
        recent = self.accounting.recent
        while recent and recent[0] < now - 1.0:
            recent.popleft()
        snap = self.ledger.snapshot()
        hour, day, cluster = snap["hour_usd"], snap["day_usd"], None
        if self.state.registry.shared:  # cluster mode: the cluster's spend and processes, as of the last heartbeat
            seen = self.state.registry.latest
            if seen is not None:
                cluster = seen.to_dict()
                if seen.spend is not None:
                    hour, day = seen.spend["hour_usd"], seen.spend["day_usd"]
        return StatsTick(
            rps=float(len(recent)), in_flight=self.in_flight, hour_usd=hour, day_usd=day,
            hourly_budget_usd=snap["hourly_usd"], daily_budget_usd=snap["daily_usd"],
            stopped=self.killswitch.state()["stopped"], providers=self.provider_status(),
            savings_usd=self.savings.savings_usd, bus_dropped=self.bus.dropped, cluster=cluster,
        )

    def _process_sample(self) -> ProcessSample:
        """This process's row for the cluster's process table (read by the heartbeat, once a second)."""
        return ProcessSample(in_flight=self.in_flight, rps=rate_last_second(self.accounting.recent, time.time()),
                             stopped=self.killswitch.state()["stopped"], address=self.address, started=self.started_at)

    # -- lookups the admin endpoints and the console use ----------------------------------
    def new_request_id(self) -> str:
        return f"{self._id_prefix}{next(self._ids):06x}"

    async def authenticate(self, secret: str) -> Identity | None:
        """Who ``secret`` is, including a session another process of the cluster issued."""
        return await self.admission.authenticate_any(secret)

    def provider_for(self, model: str, protocol: str) -> str | None:
        return self.matcher.provider_for(model, protocol)

    def output_limit(self, model: str) -> int | None:
        return self.prices.output_limit(model)

    def redact_text(self, raw: bytes | str) -> str:
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, "[redacted]")
        return _SECRET_RE.sub("[redacted]", text)

    def redact_body(self, body: dict[str, Any]) -> str:
        return self.redact_text(orjson.dumps(body))

    def secrets(self) -> list[str]:
        """Every secret the gateway knows, for redaction (provider keys, gateway keys, the admin token)."""
        out = [p.api_key for p in self.cfg.providers.values() if len(p.api_key) >= 6]
        out += [k.key for k in self.cfg.keys if len(k.key) >= 6]
        out.append(self.admin_token)
        return out

    def provider_status(self) -> dict[str, dict[str, Any]]:
        if not self.state.registry.shared:
            return {name: lim.snapshot() for name, lim in self.limiters.items()}
        shared = {name: lim.snapshot() for name, lim in self.state.limits.items()}  # shared rps/slots
        seen = self.state.registry.latest
        return overlay_limits(shared, seen.limits) if seen is not None else shared

    # -- ASGI -----------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            path = scope["path"]
            endpoint = BY_PATH.get(path)
            wire = None
            if endpoint is None and path.startswith(_GEMINI_PREFIXES):
                matched = gemini.match_path(path)
                if matched is not None:
                    endpoint, wire = matched[0], gemini.PROTOCOL.for_model(matched[1])
            if endpoint is not None:
                if scope["method"] != "POST":
                    wire = PROVIDER_WIRES[endpoint.protocol]
                    await send_bytes(send, 405, wire.error_body(405, f"use POST for {path}"),
                                     {"x-agentdeck-request-id": self.new_request_id(), "x-agentdeck-model": "-",
                                      "x-agentdeck-tier": NO_TIER, "allow": "POST"})
                    return
                self.in_flight += 1
                try:
                    await self.pipeline.handle(scope, receive, send, endpoint, wire)
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
