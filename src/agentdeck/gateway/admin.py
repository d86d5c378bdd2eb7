"""Operations endpoints: health, metrics, models, and the admin API behind the admin token."""

from __future__ import annotations

import asyncio
import hmac
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import orjson

from agentdeck.bus import Policy
from agentdeck.gateway.http import BodyTooLarge, ClientGone, Receive, Scope, Send, read_body, send_bytes, send_json, start_stream

if TYPE_CHECKING:
    from agentdeck.gateway.app import Gateway

ALIASES = ("auto", "fast", "balanced", "smart")


async def handle(gw: "Gateway", scope: Scope, receive: Receive, send: Send) -> None:
    path, method = scope["path"], scope["method"]
    if path == "/healthz":
        await send_json(send, 200, {"status": "ok"})
    elif path == "/metrics":
        gw.metrics.refresh(gw.provider_status(), gw.killswitch.state()["stopped"], gw.ledger.snapshot(),
                           gw.savings.savings_usd, gw.bus.dropped)
        await send_bytes(send, 200, gw.metrics.render(), content_type=b"text/plain; version=0.0.4; charset=utf-8")
    elif path == "/v1/models" and method == "GET":
        await _models(gw, scope, send)
    elif path.startswith("/admin/"):
        if not _authorized(gw, scope):
            await send_json(send, 401, {"error": {"message": "admin token required (Authorization: Bearer ADMIN_TOKEN)",
                                                  "type": "authentication_error", "param": None, "code": "unauthorized"}})
            return
        await _admin(gw, scope, receive, send, path, method)
    else:
        await send_json(send, 404, {"error": {"message": f"no route for {method} {path}", "type": "invalid_request_error",
                                              "param": None, "code": "not_found"}})


def _authorized(gw: "Gateway", scope: Scope) -> bool:
    for k, v in scope["headers"]:
        if k == b"authorization":
            got = v.decode("latin-1")
            return got[:7].lower() == "bearer " and hmac.compare_digest(got[7:].strip(), gw.admin_token)
    return False


async def _models(gw: "Gateway", scope: Scope, send: Send) -> None:
    headers = {k: v.decode("latin-1") for k, v in scope["headers"] if k in (b"authorization", b"x-api-key", b"anthropic-version")}
    anthropic_style = b"anthropic-version" in headers
    auth = headers.get(b"authorization", "")
    secret = auth[7:].strip() if auth[:7].lower() == "bearer " else headers.get(b"x-api-key", "")
    tags = {"x-agentdeck-request-id": gw.new_request_id(), "x-agentdeck-model": "-", "x-agentdeck-tier": "none"}
    if gw.authenticate(secret) is None:
        wire = gw.wires["anthropic" if anthropic_style else "openai"]
        await send_bytes(send, 401, wire.error_body(401, "agentdeck: missing or unknown gateway key", "invalid_api_key"), tags)
        return
    rows: list[tuple[str, str]] = [(a, "agentdeck") for a in ALIASES]
    for name, p in gw.cfg.providers.items():
        rows.extend((m, name) for m in p.models)
    if anthropic_style:
        data = [{"type": "model", "id": m, "display_name": m, "created_at": "2025-01-01T00:00:00Z"} for m, _ in rows]
        await send_json(send, 200, {"data": data, "has_more": False, "first_id": data[0]["id"], "last_id": data[-1]["id"]},
                        tags)
    else:
        await send_json(send, 200, {"object": "list", "data": [{"id": m, "object": "model", "created": 0, "owned_by": o}
                                                               for m, o in rows]}, tags)


async def _json_body(receive: Receive, send: Send) -> dict[str, Any] | None:
    try:
        raw = await read_body(receive, 64 * 1024, None)
        body = orjson.loads(raw) if raw.strip() else {}
    except (BodyTooLarge, orjson.JSONDecodeError):
        await send_json(send, 400, {"error": {"message": "body must be a JSON object", "type": "invalid_request_error",
                                              "param": None, "code": "invalid_json"}})
        return None
    except ClientGone:
        return None
    if not isinstance(body, dict):
        await send_json(send, 400, {"error": {"message": "body must be a JSON object", "type": "invalid_request_error",
                                              "param": None, "code": "invalid_json"}})
        return None
    return body


async def _bad(send: Send, field: str, message: str) -> None:
    await send_json(send, 400, {"error": {"message": f"'{field}' {message}", "type": "invalid_request_error",
                                          "param": field, "code": "invalid_request"}})


async def _admin(gw: "Gateway", scope: Scope, receive: Receive, send: Send, path: str, method: str) -> None:
    if path == "/admin/status" and method == "GET":
        await send_json(send, 200, status(gw))
    elif path == "/admin/requests" and method == "GET":
        qs = parse_qs(scope.get("query_string", b"").decode())
        try:
            limit = max(1, min(int(qs.get("limit", ["50"])[0]), 1000))
        except ValueError:
            await _bad(send, "limit", "must be an integer")
            return
        await gw.store.flush()
        await send_json(send, 200, {"requests": await gw.store.recent_requests(limit)})
    elif path == "/admin/stop" and method == "POST":
        body = await _json_body(receive, send)
        if body is None:
            return
        reason, key, actor = body.get("reason"), body.get("key"), body.get("actor", "api")
        if not isinstance(reason, str) or not reason.strip():
            await _bad(send, "reason", "is required: say why traffic is being stopped")
            return
        if key is not None and not isinstance(key, str):
            await _bad(send, "key", "must be a key or session name, or null for everything")
            return
        if actor not in ("api", "cli", "console", "auto"):
            actor = "api"
        await gw.killswitch.stop(reason.strip(), key=key, actor=actor)
        await send_json(send, 200, {"stopped": True, "key": key, "reason": reason.strip()})
    elif path == "/admin/resume" and method == "POST":
        body = await _json_body(receive, send)
        if body is None:
            return
        key, actor = body.get("key"), body.get("actor", "api")
        if key is not None and not isinstance(key, str):
            await _bad(send, "key", "must be a key or session name, or null for everything")
            return
        if actor not in ("api", "cli", "console", "auto"):
            actor = "api"
        await gw.killswitch.resume(key=key, actor=actor)
        await send_json(send, 200, {"stopped": gw.killswitch.state()["stopped"], "key": key})
    elif path == "/admin/sessions" and method == "POST":
        body = await _json_body(receive, send)
        if body is None:
            return
        name, budget, parent = body.get("name"), body.get("budget_usd"), body.get("key")
        if name is not None and (not isinstance(name, str) or not name.strip()):
            await _bad(send, "name", "must be a non-empty string")
            return
        if budget is not None and (isinstance(budget, bool) or not isinstance(budget, (int, float)) or budget < 0):
            await _bad(send, "budget_usd", "must be a non-negative number")
            return
        session_name, secret = gw.sessions.create(name or "session", budget, parent)
        if budget is not None:
            gw.ledger.set_key_budget(session_name, float(budget))
        session = gw.sessions.get(session_name)
        digest = gw.sessions.digest_of(session_name)
        if session is not None and digest is not None:
            await gw.store.record_session(session_name, digest, session.parent_key, session.budget_usd, session.created)
        await send_json(send, 200, {"session": session_name, "key": secret})
    elif path == "/admin/history" and method == "GET":
        await gw.store.flush()
        await send_json(send, 200, {"stops": await gw.store.stop_history(), "alerts": await gw.store.recent_alerts()})
    elif path == "/admin/events" and method == "GET":
        await _events(gw, receive, send)
    else:
        await send_json(send, 404, {"error": {"message": f"no admin route for {method} {path}", "type": "invalid_request_error",
                                              "param": None, "code": "not_found"}})


def status(gw: "Gateway") -> dict[str, Any]:
    ks = gw.killswitch.state()
    snap = gw.ledger.snapshot()
    return {
        "stopped": ks["stopped"],
        "stop_reason": ks.get("stop_reason"),
        "stopped_keys": ks.get("stopped_keys", {}),
        "stop": {"since": ks.get("since"), "actor": ks.get("actor")},
        "spend": {"hour_usd": snap["hour_usd"], "day_usd": snap["day_usd"], "reserved_usd": snap.get("reserved_usd", 0.0),
                  "open_reservations": snap.get("open_reservations", 0)},
        "budget": {"hourly_usd": snap["hourly_usd"], "daily_usd": snap["daily_usd"]},
        "keys": snap.get("keys", {}),
        "providers": gw.provider_status(),
        "savings": {"usd": round(gw.savings.savings_usd, 6)},
        "routing": gw.savings.snapshot(),
        "in_flight": gw.in_flight,
        "uptime_s": round(time.time() - gw.started_at, 1),
        "bus": {"published": gw.bus.published, "dropped": gw.bus.dropped},
    }


SSE_GATHER_S = 0.05


async def _events(gw: "Gateway", receive: Receive, send: Send) -> None:
    """The bus as Server-Sent Events: one JSON object per event, with a heartbeat comment every 15 s."""
    sub = gw.bus.subscribe("sse", maxlen=20_000, policy=Policy.COALESCE)
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
