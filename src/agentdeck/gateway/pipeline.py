"""The path of one call: admission -> routing -> reservation -> upstream -> accounting.

Each stage is an object built once by the composition root (``app``) with what it
needs; this module only runs them in order and answers the caller. Everything here
runs on the gateway's event loop and does no disk I/O.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Callable

import aiohttp
import orjson

from agentdeck.budget import BudgetExceeded
from agentdeck.gateway.accounting import AccountingStage
from agentdeck.gateway.admission import AdmissionStage
from agentdeck.gateway.call import NO_TIER, Call, Refusal, Seen, header_value
from agentdeck.gateway.fallback import CrossFallback
from agentdeck.gateway.http import ClientGone, RawHeaders, Receive, Scope, Send, send_bytes, send_chunk, start_stream
from agentdeck.gateway.metrics import Metrics
from agentdeck.gateway.reservation import ReservationStage
from agentdeck.gateway.routing import RoutingStage
from agentdeck.gateway.upstream import UnforwardableHeader, UpstreamStage, UpstreamUnavailable, forwarded_headers
from agentdeck.limits import Throttled
from agentdeck.limits.headers import retry_hint_headers
from agentdeck.routing import error_problem, quality_problem
from agentdeck.state import StopState
from agentdeck.wire import BILLABLE, PROTOCOLS, PROVIDER_WIRES, Endpoint, StreamMeter, WireProtocol, gemini
from agentdeck.wire.translate import Translator, translator
from agentdeck.wire.estimate import estimate_input_tokens
from agentdeck.wire.sse import SSEDecoder, SSEEvent

_PASS_RESPONSE_HEADERS = frozenset({b"retry-after", b"retry-after-ms", b"x-should-retry", b"request-id", b"x-request-id"})
_PASS_RESPONSE_PREFIXES = (b"x-ratelimit-", b"anthropic-ratelimit-")
_PASSED: dict[bytes, bytes] = {}
"""Provider header name as sent -> its lower-case name when it is passed on, b"" when not (a few dozen names)."""


def _passed_name(name: bytes) -> bytes:
    low = name.lower()
    keep = low if low in _PASS_RESPONSE_HEADERS or low.startswith(_PASS_RESPONSE_PREFIXES) else b""
    if len(_PASSED) < 1024:
        _PASSED[name] = keep
    return keep


class Pipeline:
    """Runs client calls through the stages; one per gateway."""

    def __init__(self, *, admission: AdmissionStage, routing: RoutingStage, reservation: ReservationStage,
                 upstream: UpstreamStage, accounting: AccountingStage, stop: StopState, metrics: Metrics,
                 new_request_id: Callable[[], str], redact: Callable[[bytes | str], str], log_bodies: bool) -> None:
        self.admission = admission
        self.routing = routing
        self.reservation = reservation
        self.upstream = upstream
        self.accounting = accounting
        self._stop = stop
        self._metrics = metrics
        self._new_id = new_request_id
        self._redact = redact
        self._log_bodies = log_bodies
        self._crossing = upstream.crossing

    async def handle(self, scope: Scope, receive: Receive, send: Send, endpoint: Endpoint,
                     wire: WireProtocol | None = None) -> None:
        """``wire`` is given for a call whose path carries part of the request (Gemini's model)."""
        t0 = time.perf_counter()
        rid = self._new_id()
        if wire is None:
            wire = PROTOCOLS[endpoint]
        raw_headers = scope["headers"]
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in raw_headers}
        if wire.name == "gemini" and "authorization" not in headers and "x-api-key" not in headers:
            headers["x-api-key"] = gemini.caller_key(headers, scope.get("query_string", b""))
        # Every answer carries the three x-agentdeck-* headers; admission fills in model and tier as it learns them.
        seen = Seen({"x-agentdeck-request-id": rid, "x-agentdeck-model": "-", "x-agentdeck-tier": NO_TIER})
        try:
            query = "" if wire.name == "gemini" else scope.get("query_string", b"").decode("latin-1")
            call = await self._admit(receive, endpoint, wire, rid, t0, headers, query, seen)
        except Refusal as r:
            await send_bytes(send, r.status, wire.error_body(r.status, r.message, r.code, r.param), {**seen.headers, **r.headers})
            self.accounting.refused(rid, wire, endpoint, seen, r.status, r.code, r.code or r.message, t0)
            return
        except ClientGone:
            return
        try:
            if endpoint not in BILLABLE:
                await self._unary(call, send)
            elif call.parsed.stream:
                while not await self._stream_once(call, receive, send):
                    pass
            else:
                await self._unary_with_escalation(call, send)
        except Throttled as t:
            call.status, call.error = 429, "gateway queue wait exceeded"
            self._metrics.throttled.labels(call.provider).inc()
            await self._refuse_late(call, send, Refusal(
                429, f"agentdeck: provider '{call.provider}' is at its concurrency limit; retry later",
                "rate_limit_exceeded", retry_hint_headers(t.retry_after_s)))
        except BudgetExceeded as b:
            call.status, call.error = 403, "budget_exceeded"
            await self._refuse_late(call, send, Refusal(403, b.message, "budget_exceeded", {"x-should-retry": "false"}))
        except UpstreamUnavailable as u:
            call.status, call.error, call.attempts = 502, str(u), u.attempts
            await self._refuse_late(call, send, Refusal(502, f"agentdeck: {u}", "upstream_unavailable"))
        except (aiohttp.ClientError, asyncio.TimeoutError) as e:  # the provider broke off mid-answer
            call.status, call.error = 502, f"upstream error: {type(e).__name__}"
            await self._refuse_late(call, send, Refusal(
                502, f"agentdeck: the provider's answer broke off ({type(e).__name__})", "upstream_error"))
        except asyncio.CancelledError:
            # uvicorn cancels calls still running when the shutdown grace period ends: answer 503 if nothing
            # was sent yet, and end quietly (re-raising would print a traceback for an orderly shutdown).
            call.status, call.error = 503, "gateway shut down before the call finished"
            await self._refuse_late(call, send, Refusal(
                503, "agentdeck: the gateway shut down before this call finished; retry", "gateway_shutdown",
                {"retry-after": "1"}))
        except Exception as e:  # a bug of ours: one line on stderr and a 500 in the caller's format, never a traceback
            call.status, call.error = 500, f"internal error: {type(e).__name__}"
            print(f"agentdeck: internal error on {call.rid}: {type(e).__name__}: {self._redact(str(e))[:300]}",
                  file=sys.stderr)
            await self._refuse_late(call, send, Refusal(
                500, f"agentdeck: internal error ({type(e).__name__}); see the gateway's stderr", "internal_error"))
        finally:
            await self.reservation.settle(call)
            self.accounting.finished(call)

    async def _admit(self, receive: Receive, endpoint: Endpoint, wire: WireProtocol, rid: str, t0: float,
                     headers: dict[str, str], query: str, seen: Seen) -> Call:
        adm = self.admission
        ident = adm.identify(headers, seen) or await adm.identify_shared(headers, seen)
        parsed = await adm.read(receive, headers, endpoint, wire, seen)
        context_tokens = estimate_input_tokens(parsed.raw, parsed.body)
        routed = self.routing.resolve(parsed, wire, context_tokens)
        if routed.route is not None:
            seen.headers["x-agentdeck-model"] = header_value(routed.route.model)
            seen.headers["x-agentdeck-tier"] = routed.route.tier or NO_TIER
            seen.route_tier = routed.route.tier
        await adm.check_stop(ident)  # the stop first: while it is engaged every call gets the same 403
        if routed.route is None or routed.provider is None:
            raise Refusal(404, f"agentdeck: {routed.missing}", "model_not_found", param="model")
        try:
            forward = forwarded_headers(headers)
        except UnforwardableHeader as u:
            raise Refusal(400, f"agentdeck: header '{u.name}' is not UTF-8 text; the gateway cannot pass it on unchanged",
                          "invalid_header", param=u.name) from None
        shared_count = adm.check_limits(ident, context_tokens)
        if shared_count is not None:  # a cluster session with --max-requests: counted in Redis
            await adm.count_shared(shared_count)
        route = routed.route
        call = Call(wire, endpoint, rid, t0, headers, forward, query, ident, parsed, route,
                    routed.provider, adm.caps.max_tokens(route.model, parsed), context_tokens)
        if endpoint in BILLABLE:
            await self.reservation.reserve(call)
        return call

    async def _refuse_late(self, call: Call, send: Send, r: Refusal) -> None:
        try:
            await send_bytes(send, r.status, call.wire.error_body(r.status, r.message, r.code),
                             {**call.out_headers, **r.headers})
        except Exception:  # the response may already have started (a stream); nothing more to send
            pass

    def _response_headers(self, call: Call, resp: aiohttp.ClientResponse, tr: Translator | None = None) -> RawHeaders:
        """Ours, plus the provider's retry, request-id and rate-limit headers as it sent them (its bytes,
        never decoded and encoded again)."""
        h = call.raw_out_headers()
        passed = _PASSED
        for name, value in resp.raw_headers:
            low = passed.get(name)
            if low is None:
                low = _passed_name(name)
            if low:
                h.append((low, value))
        if tr is not None:
            h.append((b"x-agentdeck-translated", tr.header.encode("latin-1")))
        return h

    def _translator(self, call: Call) -> Translator | None:
        """The translation this call's provider needs (None for a provider of the caller's own protocol)."""
        protocol = self.upstream.protocol_of(call.provider)
        return None if protocol == call.wire.name else translator(call.endpoint, protocol)

    def _cross_fallback(self, call: Call) -> CrossFallback | None:
        """For a call whose provider's fallback speaks another protocol: how to send it there."""
        if call.provider in self._crossing and call.endpoint in BILLABLE:
            return CrossFallback(call, self.routing, self.reservation)
        return None

    def _upstream_request(self, call: Call, tr: Translator | None) -> tuple[str, bytes, dict[str, str], str]:
        """(path, body, headers, query) for the provider: the caller's as patched, or translated."""
        if tr is None:
            return self._upstream_path(call), self._upstream_body(call), call.forward, call.query
        body = tr.request(call.parsed, call.route.model, call.max_tokens)
        return tr.path(call.route.model, call.parsed.stream), body, {**call.forward, **tr.headers()}, ""

    async def _translated_error(self, call: Call, tr: Translator, resp: aiohttp.ClientResponse, raw: bytes,
                                headers: RawHeaders) -> bytes:
        """A provider error in the caller's shape; a Gemini rate limit's retryDelay becomes retry-after."""
        if resp.status == 429 and tr.provider.name == "gemini" and "retry-after" not in resp.headers:
            delay = gemini.retry_delay_s(raw)
            if delay is not None:
                headers.append((b"retry-after", b"%d" % max(1, round(delay))))
        return tr.error(resp.status, self._redact(raw).encode("utf-8"))

    async def _escalate(self, call: Call, problem: str | None) -> bool:
        """Move an `auto` call one tier up after a failed check; False when it stays."""
        nxt = self.routing.escalation(call, problem)
        if nxt is None or problem is None or not await self.reservation.reserve_more(call, nxt.route.model, nxt.provider, nxt.max_tokens):
            return False
        self.accounting.escalated(call, nxt, problem)
        call.route, call.provider, call.max_tokens = nxt.route, nxt.provider, nxt.max_tokens
        return True

    def _problem(self, call: Call, status: int, raw: bytes) -> str | None:
        if status >= 400:
            return error_problem(status, raw)
        try:
            return quality_problem(call.wire.name, call.endpoint, call.parsed.body, orjson.loads(raw))
        except orjson.JSONDecodeError:
            return "invalid-response"

    def _upstream_body(self, call: Call) -> bytes:
        return call.wire.patch(call.parsed, call.route.model, call.max_tokens)

    @staticmethod
    def _upstream_path(call: Call) -> str:
        """The provider's path: the client's endpoint, or for Gemini one naming the routed model."""
        if call.wire.name == "gemini":
            return gemini.upstream_path(call.route.model, call.parsed.stream)
        return call.endpoint  # a StrEnum: the member is its path

    async def _unary_with_escalation(self, call: Call, send: Send) -> None:
        """A non-streamed call; a routed answer that fails its quality check is re-asked one tier up."""
        while True:
            status, headers, raw, ctype = await self._unary_once(call)
            if await self._escalate(call, self._problem(call, status, raw)):
                continue
            call.status = status
            await send_bytes(send, status, raw, headers, content_type=ctype)
            return

    async def _unary(self, call: Call, send: Send) -> None:
        """count_tokens: the provider's count (translated for one of another protocol), or for a
        provider with no count endpoint the gateway's own estimate, without a provider call."""
        tr = self._translator(call)
        local = tr.local_answer(call.context_tokens) if tr is not None else None
        if tr is not None and local is not None:
            call.status = 200
            await send_bytes(send, 200, local, {**call.out_headers, "x-agentdeck-translated": tr.header})
            return
        status, headers, raw, ctype = await self._unary_once(call)
        if tr is not None and status == 200:
            raw, ctype = tr.response(raw, call.route.model), b"application/json"
        call.status = status
        await send_bytes(send, status, raw, headers, content_type=ctype)

    async def _unary_once(self, call: Call) -> tuple[int, RawHeaders, bytes, bytes]:
        tr = self._translator(call)
        fb = self._cross_fallback(call) if self._crossing else None
        async with self.upstream.call(call.provider, *self._upstream_request(call, tr), reroute=fb) as up:
            raw = await up.resp.read()
            status = up.resp.status
            call.attempts += up.attempts
            if up.fallback_from is not None:
                call.fallback_from, call.provider = up.fallback_from, up.provider
                if fb is not None:
                    tr = fb.taken(call)
            headers = self._response_headers(call, up.resp, tr)
            ctype = up.resp.headers.get("content-type", "application/json").encode("latin-1")
            if tr is not None and status >= 400:
                call.error = f"upstream {status}"
                return status, headers, await self._translated_error(call, tr, up.resp, raw, headers), b"application/json"
        if status == 200 and call.endpoint in BILLABLE:
            wire = call.wire if tr is None else PROVIDER_WIRES[tr.provider.name]
            try:
                body = orjson.loads(raw)
                usage = wire.usage_from_json(body)
                if tr is not None:  # the answer translated from what was just parsed (one parse, one usage read)
                    raw, ctype = tr.response_of(body, usage, call.route.model), b"application/json"
            except (orjson.JSONDecodeError, orjson.JSONEncodeError):
                usage = None
            self.accounting.add_unary(call, usage, len(raw))
            if self._log_bodies:
                call.response_text = raw
        elif status >= 400:
            call.error = f"upstream {status}"
            raw = self._redact(raw).encode("utf-8")  # a provider that echoes our key must not show it to the caller
        return status, headers, raw, ctype

    async def _stream_once(self, call: Call, receive: Receive, send: Send) -> bool:
        """One upstream stream; False when the call was escalated and must be tried again one tier up."""
        wire = call.wire
        tr = self._translator(call)
        fb = self._cross_fallback(call) if self._crossing else None
        async with self.upstream.call(call.provider, *self._upstream_request(call, tr), reroute=fb) as up:
            call.attempts += up.attempts
            if up.fallback_from is not None:
                call.fallback_from, call.provider = up.fallback_from, up.provider
                if fb is not None:
                    tr = fb.taken(call)
            resp = up.resp
            if resp.status != 200:
                raw = await resp.read()
                if await self._escalate(call, self._problem(call, resp.status, raw)):
                    return False
                call.status, call.error = resp.status, f"upstream {resp.status}"
                headers = self._response_headers(call, resp, tr)
                if tr is not None:
                    await send_bytes(send, resp.status, await self._translated_error(call, tr, resp, raw, headers), headers)
                    return True
                await send_bytes(send, resp.status, self._redact(raw).encode("utf-8"), headers,
                                 content_type=resp.headers.get("content-type", "application/json").encode("latin-1"))
                return True
            call.status = 200
            meter: StreamMeter = wire.meter(call.parsed) if tr is None else tr.meter(wire, call.parsed, call.route.model)
            decoder = SSEDecoder()
            stop_event = self._stop.watch(call.ident.key, call.ident.session)
            ended_by: list[str] = []
            watcher = asyncio.ensure_future(_watch(receive, stop_event, resp, ended_by))
            await start_stream(send, 200, self._response_headers(call, resp, tr),
                               resp.headers.get("content-type", "text/event-stream").encode("latin-1") if tr is None
                               else b"text/event-stream")
            cut = False
            try:
                async for chunk in resp.content.iter_any():
                    out = _forwardable(meter, decoder.feed(chunk))
                    if out:
                        await send({"type": "http.response.body", "body": out, "more_body": True})
            except (aiohttp.ClientError, asyncio.TimeoutError, ConnectionError):
                cut = True
            finally:
                watcher.cancel()
            if not ended_by:
                out = _forwardable(meter, decoder.flush())
                if out:
                    await send_chunk(send, out)
            self.accounting.add_stream(call, meter)
            if meter.failure is not None:
                f = call.failure = meter.failure
                call.status, call.error = f.status, f"upstream stream error: {f.kind}"
            if ended_by and ended_by[0] == "client":
                if not meter.done:  # a hang-up after the last event (Codex does) is a finished call
                    call.status, call.error = 499, "client disconnected"
                return True
            if ended_by and ended_by[0] == "stop":
                stop = await self._stop.check(call.ident.key, call.ident.session)
                msg = stop.message if stop is not None else "agentdeck: emergency stop"
                call.error = "stopped mid-stream"
                await send_chunk(send, wire.stream_error_event(msg, "agentdeck_stopped"))
            elif not meter.done and meter.failure is None:
                call.error = "upstream stream ended early" + (" (connection error)" if cut else "")
                await send_chunk(send, wire.stream_error_event("agentdeck: the provider's stream ended early",
                                                               "upstream_stream_cut"))
            await send_chunk(send, b"", more=False)
        return True


def _forwardable(meter: StreamMeter, events: list[SSEEvent]) -> bytes:
    """The bytes to pass on for these events, each read by the meter on the way."""
    feed = meter.feed
    parts = [b for b in map(feed, events) if b is not None]
    return parts[0] if len(parts) == 1 else b"".join(parts)


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
