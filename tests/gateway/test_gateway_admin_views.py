"""The admin API as a route table over typed views (issue 13 point 2, issue 16 points 1, 4, 8).

The status document is built from ``GatewayStatus``: its JSON must keep exactly the shape
the console, the CLI and CONTRACT.md read, so a field added or renamed in one place and not
the other breaks here. A real gateway (uvicorn on its own thread) against the mock.
"""

from __future__ import annotations

from typing import Any

import httpx

from agentdeck.gateway import admin
from deck_support import ADMIN_TOKEN

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}

STATUS_SHAPE = {
    "stopped", "stop_reason", "stopped_keys", "stop", "spend", "budget", "keys", "providers", "savings", "routing",
    "in_flight", "uptime_s", "bus", "sessions",
}
CONTRACT_PROVIDER_KEYS = {"rps_limit", "slots_limit", "in_flight", "rate_limited_total"}


def test_status_document_has_exactly_the_known_shape_and_the_contract_keys(gateway: Any) -> None:
    httpx.post(gateway.url + "/admin/sessions", headers=ADMIN, json={"name": "shape", "budget_usd": 2}).raise_for_status()
    doc = httpx.get(gateway.url + "/admin/status", headers=ADMIN).json()
    assert set(doc) == STATUS_SHAPE
    assert set(doc["stop"]) == {"since", "actor"}
    assert set(doc["spend"]) == {"hour_usd", "day_usd", "reserved_usd", "open_reservations"}
    assert set(doc["budget"]) == {"hourly_usd", "daily_usd"}
    assert set(doc["bus"]) == {"published", "dropped"} and set(doc["savings"]) == {"usd"}
    assert set(doc["keys"]["shape"]) == {"day_usd", "budget_usd", "reserved_usd"}
    assert doc["sessions"]["shape"] == {"budget_usd": 2.0, "max_requests": None, "requests": 0}
    assert isinstance(doc["stopped"], bool) and isinstance(doc["spend"]["hour_usd"], float)
    for prov in doc["providers"].values():
        assert CONTRACT_PROVIDER_KEYS <= set(prov) and "breaker" in prov  # the limiter's other keys pass through
    # The function the console reads and the endpoint agree, field for field (uptime aside).
    direct = gateway.call(_status(gateway.gateway))
    for k in STATUS_SHAPE - {"uptime_s", "bus", "in_flight"}:
        assert direct[k] == doc[k], k


async def _status(gw: Any) -> dict[str, Any]:
    return admin.status(gw)


def test_route_table_answers_methods_tokens_and_unknown_paths_as_before(gateway: Any) -> None:
    url = gateway.url
    assert httpx.get(url + "/healthz").json() == {"status": "ok"}
    assert httpx.post(url + "/healthz").status_code == 200  # any method, as before
    assert httpx.get(url + "/admin/status").status_code == 401  # the token before anything else
    assert httpx.get(url + "/admin/nope").status_code == 401
    wrong = httpx.get(url + "/admin/stop", headers=ADMIN)
    assert wrong.status_code == 404 and wrong.json()["error"]["message"] == "no admin route for GET /admin/stop"
    assert httpx.get(url + "/nowhere").json()["error"]["code"] == "not_found"
    assert set(admin.ROUTES) >= {"/admin/status", "/admin/requests", "/admin/history", "/admin/events",
                                 "/admin/stop", "/admin/resume", "/admin/sessions", "/healthz", "/metrics",
                                 "/v1/models"}


def test_stop_and_resume_say_they_are_durable(gateway: Any) -> None:
    stop = httpx.post(gateway.url + "/admin/stop", headers=ADMIN, json={"reason": "drill", "key": None}).json()
    assert stop == {"stopped": True, "key": None, "reason": "drill", "durable": True}
    resume = httpx.post(gateway.url + "/admin/resume", headers=ADMIN, json={"key": None}).json()
    assert resume == {"stopped": False, "key": None, "durable": True}
    bad = httpx.post(gateway.url + "/admin/stop", headers=ADMIN, json={"reason": "x", "key": 5})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "key"
    assert httpx.post(gateway.url + "/admin/stop", headers=ADMIN, json={}).json()["error"]["param"] == "reason"


def test_admin_token_compared_as_bytes(gateway: Any) -> None:
    right = ADMIN_TOKEN.encode()
    for value in (b"Bearer " + right + b"\xc3\xa9", b"Bearer \xff", b"bearer " + right):
        r = httpx.get(gateway.url + "/admin/status", headers={"Authorization": value})
        assert r.status_code == (200 if value == b"bearer " + right else 401), value
