"""Operations endpoints: health, metrics, models, and the admin API behind the admin token.

Why a route table: each endpoint is one small view (a function from the request to a typed
answer) registered once in :data:`ROUTES`, so adding one is a line, not another branch of
an if/elif chain. Bodies are checked by one pydantic model per endpoint and refused with a
400 that names the field; no bad value gets as far as the session registry or the status
document. Everything these views read from the gateway goes through :func:`ports_of`, the
one place that knows the ``Gateway`` object's members (so it can be re-pointed at the
composition root's parts without touching a view). Not the hot path: client calls never
come here.
"""

from __future__ import annotations

import asyncio
import hmac
import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Awaitable, Callable, ClassVar, Literal
from urllib.parse import parse_qs

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from agentdeck.bus import Bus, Policy
from agentdeck.gateway.admission import caller_secret
from agentdeck.gateway.call import Refusal
from agentdeck.gateway.http import BodyTooLarge, ClientGone, Receive, Scope, Send, read_body, send_bytes, send_json, start_stream

if TYPE_CHECKING:
    from agentdeck.budget.killswitch import KillSwitch
    from agentdeck.budget.ledger import Ledger
    from agentdeck.budget.sessions import SessionRegistry
    from agentdeck.config import Config
    from agentdeck.gateway.app import Gateway
    from agentdeck.gateway.call import Identity
    from agentdeck.gateway.metrics import Metrics
    from agentdeck.state.processes import ClusterSnapshot
    from agentdeck.routing.savings import SavingsTracker
    from agentdeck.state.interfaces import ProcessRegistry
    from agentdeck.store import Store
    from agentdeck.wire import WireProtocol

ACTORS = ("api", "cli", "console", "auto")
MAX_ADMIN_BODY = 64 * 1024
SSE_GATHER_S = 0.05


# -- what the views read from the gateway: the one place that knows its members ------------

@dataclass(slots=True, frozen=True)
class AdminPorts:
    """The gateway parts the operations endpoints use, gathered from one ``Gateway`` in :func:`ports_of`."""

    cfg: "Config"
    admin_token: bytes
    killswitch: "KillSwitch"
    ledger: "Ledger"
    sessions: "SessionRegistry"
    store: "Store"
    bus: Bus
    metrics: "Metrics"
    savings: "SavingsTracker"
    wires: "dict[str, WireProtocol]"
    started_at: float
    provider_status: Callable[[], dict[str, dict[str, Any]]]
    authenticate: "Callable[[str], Awaitable[Identity | None]]"
    create_session: "Callable[..., Awaitable[tuple[str, str]]]"
    new_request_id: Callable[[], str]
    in_flight: Callable[[], int]
    model_rows: Callable[[], list[tuple[str, str]]]
    registry: "ProcessRegistry | None" = None


def ports_of(gw: "Gateway") -> AdminPorts:
    """Every read of the ``Gateway`` object by this module (re-point here when the gateway's parts move)."""
    return AdminPorts(
        cfg=gw.cfg, admin_token=gw.admin_token.encode("utf-8"), killswitch=gw.killswitch, ledger=gw.ledger,
        sessions=gw.sessions, store=gw.store, bus=gw.bus, metrics=gw.metrics, savings=gw.savings, wires=gw.wires,
        started_at=gw.started_at, provider_status=gw.provider_status, authenticate=gw.authenticate,
        create_session=gw.state.sessions.create,
        new_request_id=gw.new_request_id, in_flight=lambda: gw.in_flight, model_rows=gw.router.model_rows,
        registry=gw.state.registry,
    )


# -- the status document as a type ----------------------------------------------------------

class _View(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StopView(_View):
    since: float | None
    actor: str | None


class SpendView(_View):
    hour_usd: float
    day_usd: float
    reserved_usd: float
    open_reservations: int


class BudgetView(_View):
    hourly_usd: float
    daily_usd: float


class KeySpendView(_View):
    day_usd: float
    budget_usd: float | None
    reserved_usd: float


class SessionView(_View):
    """An `agentdeck run` session's own limits: its budget, and its calls against --max-requests."""

    budget_usd: float | None
    max_requests: int | None
    requests: int


class ProviderView(BaseModel):
    """One provider's limits; the four CONTRACT.md keys are required, the limiter's others pass through."""

    model_config = ConfigDict(extra="allow")
    rps_limit: float
    slots_limit: int
    in_flight: int
    rate_limited_total: int


class SavingsView(_View):
    usd: float


class BusView(_View):
    published: int
    dropped: int


class ProcessView(_View):
    """One gateway process of the cluster: who (host, pid, address), how busy, when last heard from."""

    id: str
    host: str
    pid: int
    address: str
    started: float
    in_flight: int
    rps: float
    stopped: bool
    last_seen: float
    age_s: float
    this: bool


class ClusterView(_View):
    """Cluster mode only: the processes that heartbeat to the same Redis, and whether it answered.

    The document's ``spend``, ``keys`` and ``providers`` are then the cluster's (shared
    windows and limits); ``in_flight`` and ``uptime_s`` stay this process's.
    """

    backend: str
    name: str
    redis: str
    up: bool
    error: str | None
    read_at: float
    in_flight: int
    rps: float
    processes: list[ProcessView]


class GatewayStatus(_View):
    """``GET /admin/status``: the kill switch, spend, budgets, providers, routing savings, uptime
    (and in cluster mode the cluster's processes)."""

    stopped: bool
    stop_reason: str | None
    stopped_keys: dict[str, str]
    stop: StopView
    spend: SpendView
    budget: BudgetView
    keys: dict[str, KeySpendView]
    sessions: dict[str, SessionView] = {}
    providers: dict[str, ProviderView]
    savings: SavingsView
    routing: dict[str, Any]
    in_flight: int
    uptime_s: float
    bus: BusView
    cluster: ClusterView | None = None

    def to_dict(self) -> dict[str, Any]:
        d = self.model_dump()
        if d.get("cluster") is None:
            d.pop("cluster", None)  # local mode: the document is what it always was
        return d


def cluster_view(seen: "ClusterSnapshot") -> ClusterView:
    return ClusterView(
        backend=seen.backend, name=seen.name, redis=seen.redis, up=seen.up, error=seen.error, read_at=seen.read_at,
        in_flight=seen.in_flight, rps=seen.rps,
        processes=[ProcessView(**r.to_dict(), age_s=round(max(0.0, seen.read_at - r.last_seen), 2), this=r.id == seen.this)
                   for r in seen.processes])


def gateway_status(p: AdminPorts) -> GatewayStatus:
    ks = p.killswitch.state()
    snap = p.ledger.snapshot()
    seen = p.registry.latest if p.registry is not None and p.registry.shared else None
    spend = snap
    keys = snap.get("keys", {})
    if seen is not None and seen.spend is not None:  # cluster mode, Redis answered: the cluster's windows
        spend = seen.spend
        keys = {k: {**keys.get(k, {"budget_usd": None}), **v} for k, v in seen.keys.items()}
    return GatewayStatus(
        stopped=ks["stopped"], stop_reason=ks.get("stop_reason"), stopped_keys=ks.get("stopped_keys", {}),
        stop=StopView(since=ks.get("since"), actor=ks.get("actor")),
        spend=SpendView(hour_usd=spend["hour_usd"], day_usd=spend["day_usd"], reserved_usd=spend.get("reserved_usd", 0.0),
                        open_reservations=spend.get("open_reservations", 0)),
        budget=BudgetView(hourly_usd=snap["hourly_usd"], daily_usd=snap["daily_usd"]),
        keys={k: KeySpendView(day_usd=v.get("day_usd", 0.0), budget_usd=v.get("budget_usd"),
                              reserved_usd=v.get("reserved_usd", 0.0)) for k, v in keys.items()},
        sessions={s.name: SessionView(budget_usd=s.budget_usd, max_requests=s.max_requests,
                                      requests=p.sessions.used(s.name)) for s in p.sessions.all()},
        providers={k: ProviderView(**v) for k, v in p.provider_status().items()},
        savings=SavingsView(usd=round(p.savings.savings_usd, 6)),
        routing=p.savings.snapshot(),
        in_flight=p.in_flight(),
        uptime_s=round(time.time() - p.started_at, 1),
        bus=BusView(published=p.bus.published, dropped=p.bus.dropped),
        cluster=cluster_view(seen) if seen is not None else None,
    )


def status(gw: "Gateway") -> dict[str, Any]:
    """The status document as JSON-ready data (what the console and the demo read)."""
    return gateway_status(ports_of(gw)).to_dict()


# -- request bodies as types ----------------------------------------------------------------

Actor = Literal["api", "cli", "console", "auto"]


def _lenient_actor(v: object) -> str:
    """An unknown actor is recorded as 'api' (as before): who pressed the button is not worth a 400."""
    return v if isinstance(v, str) and v in ACTORS else "api"


_KEY_WORDS = "must be a key or session name, or null for everything"


class _Body(BaseModel):
    """A request body; ``words`` says in plain words what each field must be (used in the 400)."""

    words: ClassVar[dict[str, str]] = {}


class StopBody(_Body):
    model_config = ConfigDict(extra="ignore", strict=True)
    words: ClassVar[dict[str, str]] = {"reason": "is required: say why traffic is being stopped", "key": _KEY_WORDS}
    reason: str
    key: str | None = None
    actor: Actor = "api"

    @field_validator("actor", mode="before")
    @classmethod
    def _actor(cls, v: object) -> str:
        return _lenient_actor(v)

    @field_validator("reason")
    @classmethod
    def _reason(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("is required: say why traffic is being stopped")
        return v.strip()


class ResumeBody(_Body):
    model_config = ConfigDict(extra="ignore", strict=True)
    words: ClassVar[dict[str, str]] = {"key": _KEY_WORDS}
    key: str | None = None
    actor: Actor = "api"

    @field_validator("actor", mode="before")
    @classmethod
    def _actor(cls, v: object) -> str:
        return _lenient_actor(v)


class SessionBody(_Body):
    """``POST /admin/sessions`` (what ``agentdeck run`` sends). Unknown fields are refused."""

    model_config = ConfigDict(extra="forbid", strict=True)
    words: ClassVar[dict[str, str]] = {
        "name": "must be a non-empty string", "budget_usd": "must be a non-negative number (US dollars)",
        "key": "must be the name of a configured key, or null", "max_requests": "must be a positive integer"}
    name: str | None = None
    budget_usd: float | None = Field(default=None, ge=0)
    key: str | None = None
    max_requests: int | None = Field(default=None, ge=1)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str | None) -> str | None:
        if v is not None and not v.strip():
            raise ValueError("must be a non-empty string")
        return v

    @field_validator("budget_usd")
    @classmethod
    def _finite(cls, v: float | None) -> float | None:
        if v is not None and not math.isfinite(v):
            raise ValueError("must be a finite number")
        return v


class Refused(Exception):
    """A 400 naming the field (``param``) that is wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def parse_body(model: type[_Body], body: dict[str, Any]) -> Any:
    """``model`` from ``body``, or :class:`Refused` naming the first wrong field in words."""
    try:
        return model.model_validate(body)
    except ValidationError as e:
        err = e.errors(include_url=False)[0]
        field = ".".join(str(x) for x in err.get("loc", ())) or "body"
        kind, msg = err.get("type", ""), str(err.get("msg", "is not valid"))
        if kind == "extra_forbidden":
            known = ", ".join(model.model_fields)
            raise Refused(field, f"'{field}' is not a field here (known: {known})") from None
        words = model.words.get(field)
        if words is None:
            words = msg[len("Value error, "):] if msg.startswith("Value error, ") else msg[:1].lower() + msg[1:]
        raise Refused(field, f"'{field}' {words}") from None


# -- answers ---------------------------------------------------------------------------------

def _error(message: str, code: str, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": "invalid_request_error" if code != "unauthorized"
                      else "authentication_error", "param": param, "code": code}}


async def _bad(send: Send, field: str, message: str) -> None:
    await send_json(send, 400, _error(message, "invalid_request", field))


async def _json_body(receive: Receive, send: Send) -> dict[str, Any] | None:
    """The request's JSON object, or None after answering 400 (or when the caller went away)."""
    try:
        raw = await read_body(receive, MAX_ADMIN_BODY, None)
        body = orjson.loads(raw) if raw.strip() else {}
    except (BodyTooLarge, orjson.JSONDecodeError):
        body = None
    except ClientGone:
        return None
    if not isinstance(body, dict):
        await send_json(send, 400, _error("body must be a JSON object", "invalid_json"))
        return None
    return body


async def _checked_body(model: type[_Body], receive: Receive, send: Send) -> Any:
    """The request body as ``model``, or None after answering 400 naming the field (or when the caller went away)."""
    raw = await _json_body(receive, send)
    if raw is None:
        return None
    try:
        return parse_body(model, raw)
    except Refused as e:
        await _bad(send, e.field, e.message)
        return None


def _authorized(token: bytes, scope: Scope) -> bool:
    """Bearer ADMIN_TOKEN, compared as bytes in constant time (any header bytes are safe to compare)."""
    for k, v in scope["headers"]:
        if k == b"authorization":
            return v[:7].lower() == b"bearer " and hmac.compare_digest(v[7:].strip(), token)
    return False


# -- the views --------------------------------------------------------------------------------

View = Callable[[AdminPorts, Scope, Receive, Send], Awaitable[None]]


async def _healthz(p: AdminPorts, scope: Scope, receive: Receive, send: Send) -> None:
    await send_json(send, 200, {"status": "ok"})


async def _metrics(p: AdminPorts, scope: Scope, receive: Receive, send: Send) -> None:
    spend = p.ledger.snapshot()
    seen = p.registry.latest if p.registry is not None and p.registry.shared else None
    if seen is not None and seen.spend is not None:  # cluster mode: the cluster's windows (as of the last heartbeat)
        spend = {**spend, **seen.spend}
    p.metrics.refresh(p.provider_status(), p.killswitch.state()["stopped"], spend, p.savings.savings_usd, p.bus.dropped)
    await send_bytes(send, 200, p.metrics.render(), content_type=b"text/plain; version=0.0.4; charset=utf-8")


async def _models(p: AdminPorts, scope: Scope, receive: Receive, send: Send) -> None:
    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]
               if k in (b"authorization", b"x-api-key", b"anthropic-version")}
    anthropic_style = "anthropic-version" in headers
    secret = caller_secret(headers)
    tags = {"x-agentdeck-request-id": p.new_request_id(), "x-agentdeck-model": "-", "x-agentdeck-tier": "none"}
    if await p.authenticate(secret) is None:
        wire = p.wires["anthropic" if anthropic_style else "openai"]
        await send_bytes(send, 401, wire.error_body(401, "agentdeck: missing or unknown gateway key", "invalid_api_key"), tags)
        return
    rows = p.model_rows()  # aliases, exact model names, tier models: a glob is a pattern, not a model id
    if anthropic_style:
        data = [{"type": "model", "id": m, "display_name": m, "created_at": "2025-01-01T00:00:00Z"} for m, _ in rows]
        await send_json(send, 200, {"data": data, "has_more": False, "first_id": data[0]["id"], "last_id": data[-1]["id"]},
                        tags)
    else:
        await send_json(send, 200, {"object": "list", "data": [{"id": m, "object": "model", "created": 0, "owned_by": o}
                                                               for m, o in rows]}, tags)


async def _status(p: AdminPorts, scope: Scope, receive: Receive, send: Send) -> None:
    if p.registry is not None and p.registry.shared:
        await p.registry.refresh()  # one read of the cluster now (a stopped Redis answers at once: marked down)
    await send_json(send, 200, gateway_status(p).to_dict())


async def _requests(p: AdminPorts, scope: Scope, receive: Receive, send: Send) -> None:
    qs = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    try:
        limit = max(1, min(int(qs.get("limit", ["50"])[0]), 1000))
    except ValueError:
        await _bad(send, "limit", "'limit' must be an integer")
        return
    await p.store.flush()
    await send_json(send, 200, {"requests": await p.store.recent_requests(limit)})


async def _stop(p: AdminPorts, scope: Scope, receive: Receive, send: Send) -> None:
    body: StopBody | None = await _checked_body(StopBody, receive, send)
    if body is None:
        return
    ack = await p.killswitch.engage(body.reason, key=body.key, actor=body.actor)
    await send_json(send, 200, {"stopped": True, "key": body.key, "reason": body.reason, **ack.to_dict()})


async def _resume(p: AdminPorts, scope: Scope, receive: Receive, send: Send) -> None:
    body: ResumeBody | None = await _checked_body(ResumeBody, receive, send)
    if body is None:
        return
    ack = await p.killswitch.lift(key=body.key, actor=body.actor)
    await send_json(send, 200, {"stopped": p.killswitch.state()["stopped"], "key": body.key, **ack.to_dict()})


def _accepts_max_requests(sessions: "SessionRegistry") -> bool:
    import inspect

    return "max_requests" in inspect.signature(sessions.create).parameters


async def _sessions(p: AdminPorts, scope: Scope, receive: Receive, send: Send) -> None:
    body: SessionBody | None = await _checked_body(SessionBody, receive, send)
    if body is None:
        return
    known = sorted(k.name for k in p.cfg.keys)
    if body.key is not None and body.key not in known:
        await _bad(send, "key", f"'key' {body.key!r} is not a configured key (known: {', '.join(known) or 'none'})")
        return
    extra: dict[str, Any] = {}
    if body.max_requests is not None:
        if not _accepts_max_requests(p.sessions):
            await _bad(send, "max_requests", "'max_requests' is not supported by this gateway")
            return
        extra["max_requests"] = body.max_requests
    try:  # the state backend registers it (in Redis too in cluster mode) and sets its budget
        name, secret = await p.create_session(body.name or "session", body.budget_usd, body.key, **extra)
    except Refusal as r:  # cluster mode with Redis unreachable
        await send_json(send, r.status, _error(r.message, r.code or "unavailable"), r.headers)
        return
    session = p.sessions.get(name)
    digest = p.sessions.digest_of(name)
    durable = False
    if session is not None and digest is not None:
        durable = await p.store.record_session(name, digest, session.parent_key, session.budget_usd, session.created,
                                               **extra)
    answer: dict[str, Any] = {"session": name, "key": secret, **extra, "durable": durable}
    if not durable:
        answer["warning"] = (f"the session works now but is in memory only: the database cannot be written "
                             f"({p.store.last_error or 'unknown error'}); a restart before it is written forgets it")
    await send_json(send, 200, answer)


async def _history(p: AdminPorts, scope: Scope, receive: Receive, send: Send) -> None:
    await p.store.flush()
    await send_json(send, 200, {"stops": await p.store.stop_history(), "alerts": await p.store.recent_alerts()})


async def _events(p: AdminPorts, scope: Scope, receive: Receive, send: Send) -> None:
    """The bus as Server-Sent Events: one JSON object per event, with a heartbeat comment every 15 s."""
    sub = p.bus.subscribe("sse", maxlen=20_000, policy=Policy.COALESCE)
    await start_stream(send, 200)
    gone = asyncio.ensure_future(_until_disconnect(receive))
    try:
        await send({"type": "http.response.body", "body": b": connected\n\n", "more_body": True})
        idle = 0
        while not gone.done():
            batch = await sub.get_batch(timeout=1.0)
            if gone.done():
                break
            if not batch:
                idle += 1
                if idle % 15 == 0:
                    await send({"type": "http.response.body", "body": b": keep-alive\n\n", "more_body": True})
                continue
            out = b"".join(b"data: " + e.to_json() + b"\n\n" for e in batch)
            await send({"type": "http.response.body", "body": out, "more_body": True})
            # Let the next events gather: at 1,000 events/s this is 20 writes a second instead of
            # a thousand, for the gateway's loop and for the reader. A quiet stream still gets
            # its first event at once.
            await asyncio.sleep(SSE_GATHER_S)
    finally:
        gone.cancel()
        sub.close()


async def _until_disconnect(receive: Receive) -> None:
    while True:
        msg = await receive()
        if msg["type"] == "http.disconnect":
            return


# -- the route table --------------------------------------------------------------------------

@dataclass(slots=True, frozen=True)
class Route:
    """One endpoint: its view, the methods it answers (None = any), and whether it needs the admin token."""

    view: View
    methods: frozenset[str] | None
    admin: bool


def _get(view: View) -> Route:
    return Route(view, frozenset({"GET"}), admin=True)


def _post(view: View) -> Route:
    return Route(view, frozenset({"POST"}), admin=True)


ROUTES: dict[str, Route] = {
    "/healthz": Route(_healthz, None, admin=False),
    "/metrics": Route(_metrics, None, admin=False),
    "/v1/models": Route(_models, frozenset({"GET"}), admin=False),
    "/admin/status": _get(_status),
    "/admin/requests": _get(_requests),
    "/admin/history": _get(_history),
    "/admin/events": _get(_events),
    "/admin/stop": _post(_stop),
    "/admin/resume": _post(_resume),
    "/admin/sessions": _post(_sessions),
}


async def handle(gw: "Gateway", scope: Scope, receive: Receive, send: Send) -> None:
    """Every request that is not a client call: look the path up, check the token, run the view."""
    path, method = scope["path"], scope["method"]
    route = ROUTES.get(path)
    is_admin = path.startswith("/admin/")
    p = ports_of(gw)
    if is_admin and not _authorized(p.admin_token, scope):
        await send_json(send, 401, _error("admin token required (Authorization: Bearer ADMIN_TOKEN)", "unauthorized"))
        return
    if route is None or (route.methods is not None and method not in route.methods):
        where = "admin route" if is_admin else "route"
        await send_json(send, 404, _error(f"no {where} for {method} {path}", "not_found"))
        return
    await route.view(p, scope, receive, send)
