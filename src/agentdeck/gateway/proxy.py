"""The client endpoints: one call through guard -> router -> limiter -> upstream -> accounting.

Everything here runs on the gateway's event loop and does no disk I/O: the finished call is
published on the bus and the store writes it in a batch later.
"""

from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Any

import aiohttp
import orjson

from agentdeck.budget import BudgetExceeded, clamp_max_tokens
from agentdeck.bus import Escalated, RequestCompleted
from agentdeck.gateway.http import BodyTooLarge, ClientGone, Receive, Scope, Send, read_body, send_bytes, send_chunk, start_stream
from agentdeck.gateway.upstream import UpstreamUnavailable, upstream_call
from agentdeck.gateway.wire import BadRequest, ParsedRequest, split_sse_events
from agentdeck.limits import Throttled
from agentdeck.pricing import Usage
from agentdeck.routing import Route, UnknownModel, error_problem, extract_text, quality_problem

if TYPE_CHECKING:
    from agentdeck.budget.ledger import Reservation
    from agentdeck.gateway.app import Gateway, Identity

NO_TIER = "none"  # x-agentdeck-tier for a call that has no tier (a model outside the tier table, or not yet routed)
_PASS_RESPONSE_HEADERS = ("retry-after", "retry-after-ms", "x-should-retry", "request-id", "x-request-id")


@dataclass(slots=True)
class Call:
    """Everything known about one call as it moves through the pipeline."""

    gw: "Gateway"
    wire: ModuleType
    endpoint: str
    rid: str
    t0: float
    headers: dict[str, str]
    ident: "Identity"
    parsed: ParsedRequest
    route: Route
    provider: str
    max_tokens: int
    context_tokens: int
    usage: Usage = field(default_factory=Usage)
    cost: float = 0.0
    estimated: bool = False
    status: int = 0
    error: str | None = None
    attempts: int = 0
    fallback_from: str | None = None
    escalations: list[str] = field(default_factory=list)
    reservations: list["Reservation"] = field(default_factory=list)
    response_text: bytes | None = None

    @property
    def out_headers(self) -> dict[str, str]:
        return {"x-agentdeck-request-id": self.rid, "x-agentdeck-model": self.route.model,
                "x-agentdeck-tier": self.route.tier or NO_TIER}


@dataclass(slots=True)
class Admission:
    """What admission learned before it refused a call: the answer's headers and who was calling."""

    headers: dict[str, str]
    ident: "Identity | None" = None
    model_requested: str | None = None
    route_tier: str | None = None
    stream: bool = False


class Refusal(Exception):
    """The gateway answers the call itself (status, message, code, extra headers)."""

    def __init__(self, status: int, message: str, code: str | None = None, headers: dict[str, str] | None = None,
                 param: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.headers, self.param = status, message, code, headers or {}, param


async def handle(gw: "Gateway", scope: Scope, receive: Receive, send: Send, wire: ModuleType, endpoint: str) -> None:
    t0 = time.perf_counter()
    rid = gw.new_request_id()
    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
    # Every answer carries the three x-agentdeck-* headers; _admit fills in model and tier as it learns them.
    seen = Admission({"x-agentdeck-request-id": rid, "x-agentdeck-model": "-", "x-agentdeck-tier": NO_TIER})
    try:
        call = await _admit(gw, receive, wire, endpoint, rid, t0, headers, seen)
    except Refusal as r:
        gw.metrics.refused.labels(r.code or str(r.status)).inc()
        await send_bytes(send, r.status, wire.error_body(r.status, r.message, r.code, r.param), {**seen.headers, **r.headers})
        if seen.ident is not None:  # a known caller refused (stop, budget, bad input): the console shows it
            gw.request_refused(RequestCompleted(
                id=rid, key=seen.ident.key, session=seen.ident.session, protocol=wire.NAME, endpoint=endpoint,
                model_requested=seen.model_requested or "-", model=seen.headers["x-agentdeck-model"], provider="",
                tier=seen.route_tier, rule=None, status=r.status, stream=seen.stream, error=r.code or r.message[:200],
                attempts=0, latency_ms=(time.perf_counter() - t0) * 1000.0))
        return
    except ClientGone:
        return
    try:
        if endpoint == "/v1/messages/count_tokens":
            await _unary(call, send)
        elif call.parsed.stream:
            await _stream(call, receive, send)
        else:
            await _unary_with_escalation(call, send)
    except Throttled as t:
        call.status, call.error = 429, "gateway queue wait exceeded"
        gw.metrics.throttled.labels(call.provider).inc()
        await _refuse_late(call, send, Refusal(429, f"agentdeck: provider '{call.provider}' is at its concurrency limit; retry later",
                                                "rate_limit_exceeded", _retry_headers(t.retry_after_s)))
    except BudgetExceeded as b:
        call.status, call.error = 403, "budget_exceeded"
        await _refuse_late(call, send, Refusal(403, b.message, "budget_exceeded", {"x-should-retry": "false"}))
    except UpstreamUnavailable as u:
        call.status, call.error, call.attempts = 502, str(u), u.attempts
        await _refuse_late(call, send, Refusal(502, f"agentdeck: {u}", "upstream_unavailable"))
    except (aiohttp.ClientError, asyncio.TimeoutError) as e:  # the provider broke off mid-answer
        call.status, call.error = 502, f"upstream error: {type(e).__name__}"
        await _refuse_late(call, send, Refusal(502, f"agentdeck: the provider's answer broke off ({type(e).__name__})",
                                                "upstream_error"))
    except asyncio.CancelledError:
        # uvicorn cancels calls still running when the shutdown grace period ends: answer 503 if nothing
        # was sent yet, and end quietly (re-raising would print a traceback for an orderly shutdown).
        call.status, call.error = 503, "gateway shut down before the call finished"
        await _refuse_late(call, send, Refusal(503, "agentdeck: the gateway shut down before this call finished; retry",
                                                "gateway_shutdown", {"retry-after": "1"}))
    except Exception as e:  # a bug of ours: one line on stderr and a 500 in the caller's format, never a traceback
        call.status, call.error = 500, f"internal error: {type(e).__name__}"
        print(f"agentdeck: internal error on {call.rid}: {type(e).__name__}: {gw.redact_text(str(e))[:300]}",
              file=sys.stderr)
        await _refuse_late(call, send, Refusal(500, f"agentdeck: internal error ({type(e).__name__}); see the gateway's stderr",
                                                "internal_error"))
    finally:
        _finish(call)


def _retry_headers(seconds: float) -> dict[str, str]:
    s = min(max(seconds, 0.001), 60.0)
    return {"retry-after-ms": str(int(s * 1000)), "retry-after": str(max(1, int(s + 0.999)))}


async def _refuse_late(call: Call, send: Send, r: Refusal) -> None:
    try:
        await send_bytes(send, r.status, call.wire.error_body(r.status, r.message, r.code), {**call.out_headers, **r.headers})
    except Exception:  # the response may already have started (a stream); nothing more to send
        pass


async def _admit(gw: "Gateway", receive: Receive, wire: ModuleType, endpoint: str, rid: str, t0: float,
                 headers: dict[str, str], seen: Admission) -> Call:
    """Auth, parse, stop check, route, caps, budget reservation. Raises Refusal with the answer."""
    auth = headers.get("authorization", "")
    secret = auth[7:].strip() if auth[:7].lower() == "bearer " else headers.get("x-api-key", "")
    ident = seen.ident = gw.authenticate(secret)
    if ident is None:
        raise Refusal(401, "agentdeck: missing or unknown gateway key (send it as 'Authorization: Bearer KEY' or 'x-api-key: KEY')",
                      "invalid_api_key")
    try:
        raw = await read_body(receive, gw.cfg.gateway.max_body_bytes, headers.get("content-length"))
    except BodyTooLarge:
        raise Refusal(413, f"agentdeck: request body is larger than {gw.cfg.gateway.max_body_bytes} bytes",
                      "request_too_large") from None
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise Refusal(400, f"agentdeck: request body is not valid JSON ({e.msg} at position {e.pos})", "invalid_json") from None
    if not isinstance(body, dict):
        raise Refusal(400, "agentdeck: request body must be a JSON object", "invalid_request")
    try:
        parsed = wire.parse(endpoint, body)
    except BadRequest as b:
        raise Refusal(b.status, f"agentdeck: {b.message}", "invalid_request", param=b.field) from None
    seen.headers["x-agentdeck-model"], seen.model_requested, seen.stream = parsed.model, parsed.model, parsed.stream
    context_tokens = len(raw) // 4
    if parsed.model == "auto":
        text, context_tokens = extract_text(wire.NAME, endpoint, body)
    else:
        text = ""
    try:
        route: Route | None = gw.router.resolve(parsed.model, wire.NAME, text, context_tokens, gw.ledger.share_used())
    except UnknownModel:
        route = None
    if route is not None:
        seen.headers["x-agentdeck-model"], seen.headers["x-agentdeck-tier"] = route.model, route.tier or NO_TIER
        seen.route_tier = route.tier
    # The stop comes first: while it is engaged every call gets the same 403, whatever it asked for.
    stop = gw.killswitch.check(ident.key, ident.session)
    if stop is not None:
        raise Refusal(403, stop.message, "agentdeck_stopped", {"x-should-retry": "false"})
    if route is None:
        raise Refusal(404, f"agentdeck: unknown model '{parsed.model}' (see GET /v1/models)", "model_not_found", param="model")
    if gw.anomaly.throttled(ident.ledger_key):
        raise Refusal(429, f"agentdeck: key '{ident.ledger_key}' is throttled after an anomaly alert", "rate_limit_exceeded",
                      _retry_headers(1.0 / gw.cfg.anomaly.throttle_rps))
    provider = gw.provider_for(route.model, wire.NAME)
    if provider is None:
        raise Refusal(404, f"agentdeck: model '{route.model}' is not served over the {wire.NAME} protocol by any configured provider",
                      "model_not_found", param="model")
    if context_tokens > gw.cfg.caps.max_input_tokens:
        raise Refusal(413, f"agentdeck: input of about {context_tokens} tokens is over the cap of {gw.cfg.caps.max_input_tokens} "
                      "([caps] max_input_tokens)", "input_too_large")
    max_tokens = clamp_max_tokens(parsed.max_tokens, gw.output_limit(route.model), gw.cfg.caps)
    call = Call(gw, wire, endpoint, rid, t0, headers, ident, parsed, route, provider, max_tokens, context_tokens)
    if endpoint != "/v1/messages/count_tokens":
        _reserve(call, route.model)
    return call


def _reserve(call: Call, model: str) -> None:
    gw = call.gw
    worst = gw.prices.worst_case(model, call.context_tokens, call.max_tokens)
    try:
        call.reservations.append(gw.ledger.reserve(call.ident.key, worst, session=call.ident.session))
    except BudgetExceeded as b:
        raise Refusal(403, b.message, "budget_exceeded", {"x-should-retry": "false"}) from None


def _price(call: Call, model: str, usage: Usage) -> float:
    gw = call.gw
    price = gw.prices.get(model)
    if not price.known:
        gw.warn_unpriced(model)
    return gw.prices.cost(model, usage)


def _response_headers(call: Call, resp: aiohttp.ClientResponse) -> dict[str, str]:
    h = call.out_headers
    for name in _PASS_RESPONSE_HEADERS:
        v = resp.headers.get(name)
        if v is not None:
            h[name] = v
    return h


async def _unary_with_escalation(call: Call, send: Send) -> None:
    """A non-streamed call; a routed answer that fails its quality check is re-asked one tier up."""
    while True:
        status, headers, raw = await _unary_once(call)
        if _escalate(call, _problem(call, status, raw)):
            continue
        call.status = status
        await send_bytes(send, status, raw, headers)
        return


def _escalate(call: Call, problem: str | None) -> bool:
    """Move an `auto` call one tier up after a failed check; False when it stays (named model or tier, cap, top)."""
    gw = call.gw
    if problem is None or not gw.cfg.routing.escalate or call.parsed.model != "auto" or call.route.tier is None:
        return False
    nxt = gw.router.escalation(call.route, call.escalations, call.wire.NAME, problem)
    provider = gw.provider_for(nxt.model, call.wire.NAME) if nxt is not None else None
    if nxt is None or provider is None:
        return False
    max_tokens = clamp_max_tokens(call.parsed.max_tokens, gw.output_limit(nxt.model), gw.cfg.caps)
    worst = gw.prices.worst_case(nxt.model, call.context_tokens, max_tokens)
    try:
        call.reservations.append(gw.ledger.reserve(call.ident.key, worst, session=call.ident.session))
    except BudgetExceeded:
        return False  # the budget cannot pay for a re-ask: the caller gets the answer it has
    gw.bus.publish(Escalated(request_id=call.rid, from_tier=call.route.tier, to_tier=nxt.tier or "", reason=problem))
    gw.metrics.escalations.labels(call.route.tier, problem).inc()
    call.escalations.append(f"{call.route.tier}->{nxt.tier}: {problem}")
    call.route, call.provider, call.max_tokens = nxt, provider, max_tokens
    return True


def _problem(call: Call, status: int, raw: bytes) -> str | None:
    if status >= 400:
        return error_problem(status, raw)
    try:
        return quality_problem(call.wire.NAME, call.endpoint, call.parsed.body, orjson.loads(raw))
    except orjson.JSONDecodeError:
        return "invalid-response"


async def _unary_once(call: Call) -> tuple[int, dict[str, str], bytes]:
    gw = call.gw
    body = call.wire.upstream_body(call.parsed, call.route.model, call.max_tokens) if call.endpoint != "/v1/messages/count_tokens" \
        else orjson.dumps({**call.parsed.body, "model": call.route.model})
    async with upstream_call(gw, call.provider, call.endpoint, body, call.headers) as up:
        raw = await up.resp.read()
        status = up.resp.status
        headers = _response_headers(call, up.resp)
        call.attempts += up.attempts
        if up.fallback_from is not None:
            call.fallback_from, call.provider = up.fallback_from, up.provider
    if status == 200 and call.endpoint != "/v1/messages/count_tokens":
        try:
            usage = call.wire.usage_from_json(call.endpoint, orjson.loads(raw))
        except orjson.JSONDecodeError:
            usage = None
        if usage is None:
            usage = Usage(input_tokens=call.context_tokens, output_tokens=max(1, len(raw) // 4))
            call.estimated = True
        _add_usage(call, usage)
        if gw.cfg.gateway.log_bodies:
            call.response_text = raw
    elif status >= 400:
        call.error = f"upstream {status}"
    return status, headers, raw


def _add_usage(call: Call, usage: Usage) -> None:
    u = call.usage
    u.input_tokens += usage.input_tokens
    u.output_tokens += usage.output_tokens
    u.cache_read_tokens += usage.cache_read_tokens
    u.cache_write_tokens += usage.cache_write_tokens
    call.cost += _price(call, call.route.model, usage)


async def _unary(call: Call, send: Send) -> None:
    status, headers, raw = await _unary_once(call)
    call.status = status
    await send_bytes(send, status, raw, headers)


async def _stream(call: Call, receive: Receive, send: Send) -> None:
    """A streamed call. An `auto` stream refused upstream as too long escalates before any byte is sent."""
    while not await _stream_once(call, receive, send):
        pass


async def _stream_once(call: Call, receive: Receive, send: Send) -> bool:
    """One upstream stream; False when the call was escalated and must be tried again one tier up."""
    gw = call.gw
    wire = call.wire
    body = wire.upstream_body(call.parsed, call.route.model, call.max_tokens)
    async with upstream_call(gw, call.provider, call.endpoint, body, call.headers) as up:
        call.attempts += up.attempts
        if up.fallback_from is not None:
            call.fallback_from, call.provider = up.fallback_from, up.provider
        resp = up.resp
        if resp.status != 200:
            raw = await resp.read()
            if _escalate(call, _problem(call, resp.status, raw)):
                return False
            call.status, call.error = resp.status, f"upstream {resp.status}"
            await send_bytes(send, resp.status, raw, _response_headers(call, resp),
                             content_type=resp.headers.get("content-type", "application/json").encode("latin-1"))
            return True
        call.status = 200
        meter = wire.StreamMeter(call.parsed)
        stop_event = gw.killswitch.watch(call.ident.key, call.ident.session)
        ended_by: list[str] = []
        watcher = asyncio.ensure_future(_watch(receive, stop_event, resp, ended_by))
        await start_stream(send, 200, _response_headers(call, resp),
                           resp.headers.get("content-type", "text/event-stream").encode("latin-1"))
        buf = bytearray()
        cut = False
        try:
            async for chunk in resp.content.iter_any():
                buf += chunk
                for ev in split_sse_events(buf):
                    out = meter.feed(ev)
                    if out is not None:
                        await send({"type": "http.response.body", "body": out, "more_body": True})
        except (aiohttp.ClientError, asyncio.TimeoutError, ConnectionError):
            cut = True
        finally:
            watcher.cancel()
        if buf and not ended_by:
            for ev in split_sse_events(buf + b"\n\n"):
                out = meter.feed(ev)
                if out is not None:
                    await send_chunk(send, out)
        _account_stream(call, meter)
        if ended_by and ended_by[0] == "client":
            call.status, call.error = 499, "client disconnected"
            return True
        if ended_by and ended_by[0] == "stop":
            stop = gw.killswitch.check(call.ident.key, call.ident.session)
            msg = stop.message if stop is not None else "agentdeck: emergency stop"
            call.error = "stopped mid-stream"
            await send_chunk(send, wire.stream_error_event(msg, "agentdeck_stopped"))
        elif not meter.done:
            call.error = "upstream stream ended early" + (" (connection error)" if cut else "")
            await send_chunk(send, wire.stream_error_event("agentdeck: the provider's stream ended early", "upstream_stream_cut"))
        await send_chunk(send, b"", more=False)
    return True


async def _watch(receive: Receive, stop_event: asyncio.Event, resp: aiohttp.ClientResponse, ended_by: list[str]) -> None:
    """End the upstream stream when the client hangs up or the emergency stop covers this call."""
    disconnect = asyncio.ensure_future(_wait_disconnect(receive))
    stopped = asyncio.ensure_future(stop_event.wait())
    try:
        done, _ = await asyncio.wait({disconnect, stopped}, return_when=asyncio.FIRST_COMPLETED)
        ended_by.append("client" if disconnect in done else "stop")
        resp.close()
    finally:
        disconnect.cancel()
        stopped.cancel()


async def _wait_disconnect(receive: Receive) -> None:
    while True:
        msg = await receive()
        if msg["type"] == "http.disconnect":
            return


def _account_stream(call: Call, meter: Any) -> None:
    usage = meter.usage
    est_out = meter.text_bytes // 4 + (1 if meter.text_bytes else 0)
    if usage is None:
        usage = Usage(input_tokens=call.context_tokens, output_tokens=est_out)
        call.estimated = True
    elif not meter.done:
        usage.output_tokens = max(usage.output_tokens, est_out)
        call.estimated = True
    _add_usage(call, usage)


def _finish(call: Call) -> None:
    """Settle the reservations, publish the call. Runs on every exit path."""
    gw = call.gw
    ledger = gw.ledger
    if call.reservations:
        # The whole call's cost (escalations included) settles on the first reservation; the others are released.
        ledger.settle(call.reservations[0], call.cost)
        for r in call.reservations[1:]:
            ledger.release(r)
    baseline = gw.baseline_cost(call.wire.NAME, call.usage)
    ev = RequestCompleted(
        id=call.rid, key=call.ident.key, session=call.ident.session, protocol=call.wire.NAME, endpoint=call.endpoint,
        model_requested=call.parsed.model, model=call.route.model, provider=call.provider, tier=call.route.tier,
        rule=call.route.rule, status=call.status or 500, stream=call.parsed.stream,
        input_tokens=call.usage.input_tokens, output_tokens=call.usage.output_tokens,
        cache_read_tokens=call.usage.cache_read_tokens, cache_write_tokens=call.usage.cache_write_tokens,
        cost_usd=call.cost, baseline_cost_usd=baseline, latency_ms=(time.perf_counter() - call.t0) * 1000.0,
        estimated=call.estimated, error=call.error, attempts=call.attempts, fallback_from=call.fallback_from,
        escalations=call.escalations,
        request_body=gw.redact_body(call.parsed.body) if gw.cfg.gateway.log_bodies else None,
        response_body=gw.redact_text(call.response_text) if call.response_text is not None else None,
    )
    gw.request_finished(ev)
