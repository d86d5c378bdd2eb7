"""Contract: the gateway's HTTP surface, against a real `agentdeck serve` subprocess.

CONTRACT.md section "HTTP": the client endpoints in both wire formats (streaming and not)
through the official openai and anthropic SDKs, /v1/models with the tier aliases, the three
x-agentdeck-* headers, every row of the status table in both protocols' error formats,
/healthz, /metrics, and the admin API (auth, status, requests, events, stop/resume).
"""

from __future__ import annotations

import hashlib
import json
import queue
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import anthropic
import httpx
import openai
import pytest
from contract_support import (
    ADMIN_TOKEN,
    KEY_DEV,
    KEY_OTHER,
    KEY_POOR,
    PROVIDER_KEY_ANTHROPIC,
    PROVIDER_KEY_OPENAI,
    TIERS,
    admin,
    auth,
    chat_body,
    messages_body,
)

HEADERS = ("x-agentdeck-request-id", "x-agentdeck-model", "x-agentdeck-tier")
CONFIGURED = {"claude-haiku-4-5", "claude-sonnet-4-5", "claude-opus-4-5", "gpt-4o-mini", "gpt-4o", "gpt-4.1"}


@pytest.fixture(scope="module")
def http(gw: Any) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gw.url, timeout=30) as c:
        yield c


@pytest.fixture(scope="module")
def oai(gw: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.url + "/v1", api_key=KEY_DEV, max_retries=0, timeout=30)


@pytest.fixture(scope="module")
def ant(gw: Any) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gw.url, api_key=KEY_DEV, max_retries=0, timeout=30)


def _headers_ok(h: Any, tier: str | None = None, model: str | None = None) -> None:
    for name in HEADERS:
        assert h.get(name), f"missing {name} in {dict(h)}"
    if tier is not None:
        assert h["x-agentdeck-tier"] == tier, dict(h)
    else:
        assert h["x-agentdeck-tier"] in TIERS, dict(h)
    if model is not None:
        assert h["x-agentdeck-model"] == model, dict(h)


def _carries_headers(r: httpx.Response) -> None:
    """'Every response carries' the three x-agentdeck-* headers (a refusal's model and tier may be empty)."""
    missing = [h for h in HEADERS if h not in r.headers]
    assert not missing, f"{r.request.method} {r.request.url.path} -> {r.status_code} lacks {missing}"
    assert r.headers["x-agentdeck-request-id"]


def _openai_error(r: httpx.Response) -> dict[str, Any]:
    _carries_headers(r)
    body = r.json()
    assert set(body) == {"error"}, body
    err = body["error"]
    assert {"message", "type", "param", "code"} <= set(err), body
    assert isinstance(err["message"], str) and err["message"], body
    return err


def _anthropic_error(r: httpx.Response) -> dict[str, Any]:
    _carries_headers(r)
    body = r.json()
    assert body.get("type") == "error", body
    err = body["error"]
    assert isinstance(err, dict) and isinstance(err.get("type"), str) and isinstance(err.get("message"), str), body
    return err


def _oai_post(http: httpx.Client, path: str, body: Any, key: str | None = KEY_DEV, **kw: Any) -> httpx.Response:
    return http.post(path, json=body, headers=auth(key) if key else {}, **kw)


def _ant_post(http: httpx.Client, path: str, body: Any, key: str | None = KEY_DEV, **kw: Any) -> httpx.Response:
    h = {"anthropic-version": "2023-06-01"}
    if key:
        h["x-api-key"] = key
    return http.post(path, json=body, headers=h, **kw)


# -- operations endpoints --------------------------------------------------------------
def test_healthz_exact_body(http: httpx.Client) -> None:
    r = http.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}


def test_models_lists_configured_models_and_aliases(http: httpx.Client, oai: openai.OpenAI) -> None:
    ids = {m.id for m in oai.models.list()}
    assert {"auto", "fast", "balanced", "smart"} <= ids
    assert CONFIGURED <= ids
    r = http.get("/v1/models", headers={"x-api-key": KEY_DEV, "anthropic-version": "2023-06-01"})
    assert r.status_code == 200
    raw_ids = {m["id"] for m in r.json()["data"]}
    assert {"auto", "fast", "balanced", "smart"} <= raw_ids and CONFIGURED <= raw_ids


def test_models_requires_a_gateway_key(http: httpx.Client) -> None:
    """A client endpoint: 'unknown or missing key -> 401' (keys are configured on this gateway)."""
    for headers in ({}, auth("not-a-key"), {"x-api-key": "not-a-key", "anthropic-version": "2023-06-01"}):
        r = http.get("/v1/models", headers=headers)
        assert r.status_code == 401, (headers, r.status_code, r.text[:200])


def test_models_response_carries_agentdeck_headers(http: httpx.Client) -> None:
    """'Every response carries x-agentdeck-request-id, x-agentdeck-model and x-agentdeck-tier'."""
    r = http.get("/v1/models", headers=auth(KEY_DEV))
    assert r.status_code == 200
    missing = [h for h in HEADERS if h not in r.headers]
    assert not missing, f"GET /v1/models lacks {missing}"


# -- client endpoints through the official SDKs ----------------------------------------
def test_openai_chat_completions(oai: openai.OpenAI) -> None:
    raw = oai.chat.completions.with_raw_response.create(model="fast", messages=[{"role": "user", "content": "hi"}])
    _headers_ok(raw.headers, tier="fast")
    c = raw.parse()
    assert c.choices[0].message.content
    assert c.model == raw.headers["x-agentdeck-model"] == "gpt-4o-mini"
    assert c.usage is not None and c.usage.completion_tokens > 0


def test_openai_chat_completions_stream_with_usage(oai: openai.OpenAI) -> None:
    raw = oai.chat.completions.with_raw_response.create(
        model="balanced", messages=[{"role": "user", "content": "hi"}], stream=True,
        stream_options={"include_usage": True})
    _headers_ok(raw.headers, tier="balanced", model="gpt-4o")
    text, usage = "", None
    for chunk in raw.parse():
        if chunk.choices and chunk.choices[0].delta.content:
            text += chunk.choices[0].delta.content
        if chunk.usage is not None:
            usage = chunk.usage
    assert text
    assert usage is not None and usage.completion_tokens > 0


def test_openai_responses(oai: openai.OpenAI) -> None:
    raw = oai.responses.with_raw_response.create(model="smart", input="hi")
    _headers_ok(raw.headers, tier="smart", model="gpt-4.1")
    r = raw.parse()
    assert r.output_text and r.usage is not None and r.usage.output_tokens > 0


def test_openai_responses_stream(oai: openai.OpenAI) -> None:
    raw = oai.responses.with_raw_response.create(model="gpt-4o", input="hi", stream=True)
    _headers_ok(raw.headers, model="gpt-4o")
    kinds = [ev.type for ev in raw.parse()]
    assert "response.output_text.delta" in kinds and kinds[-1] == "response.completed", kinds


def test_anthropic_messages(ant: anthropic.Anthropic) -> None:
    raw = ant.messages.with_raw_response.create(model="fast", max_tokens=200, messages=[{"role": "user", "content": "hi"}])
    _headers_ok(raw.headers, tier="fast", model="claude-haiku-4-5")
    m = raw.parse()
    assert m.content[0].text and m.model == "claude-haiku-4-5" and m.usage.output_tokens > 0


def test_anthropic_messages_stream(ant: anthropic.Anthropic) -> None:
    raw = ant.messages.with_raw_response.create(model="smart", max_tokens=200, stream=True,
                                                messages=[{"role": "user", "content": "hi"}])
    _headers_ok(raw.headers, tier="smart", model="claude-opus-4-5")
    kinds = [ev.type for ev in raw.parse()]
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop" and "content_block_delta" in kinds, kinds


def test_anthropic_count_tokens(ant: anthropic.Anthropic) -> None:
    raw = ant.messages.with_raw_response.count_tokens(model="claude-sonnet-4-5",
                                                      messages=[{"role": "user", "content": "hello there"}])
    _headers_ok(raw.headers, model="claude-sonnet-4-5")
    assert raw.parse().input_tokens > 0


def test_anthropic_sdk_with_bearer_auth_token(gw: Any) -> None:
    """The gateway key may also come as Authorization: Bearer on the Anthropic side (Claude Code's AUTH_TOKEN)."""
    c = anthropic.Anthropic(base_url=gw.url, auth_token=KEY_DEV, max_retries=0, timeout=30)
    m = c.messages.create(model="claude-haiku-4-5", max_tokens=50, messages=[{"role": "user", "content": "hi"}])
    assert m.content


def test_configured_model_by_name_and_auto(oai: openai.OpenAI, ant: anthropic.Anthropic) -> None:
    raw = oai.chat.completions.with_raw_response.create(model="gpt-4.1", messages=[{"role": "user", "content": "hi"}])
    _headers_ok(raw.headers, model="gpt-4.1")
    raw = ant.messages.with_raw_response.create(model="auto", max_tokens=300,
                                                messages=[{"role": "user", "content": "fix the typo in README"}])
    _headers_ok(raw.headers)
    assert raw.headers["x-agentdeck-model"] in CONFIGURED


def test_named_tier_is_served_by_that_tier(http: httpx.Client) -> None:
    """'fast / balanced / smart = that tier': even when the answer is cut at max_tokens (no escalation)."""
    tier = "fast"
    o = _oai_post(http, "/v1/chat/completions", chat_body(tier, max_tokens=5))
    a = _ant_post(http, "/v1/messages", messages_body(tier, max_tokens=5))
    assert o.status_code == 200 and a.status_code == 200
    got = {"openai": (o.headers["x-agentdeck-tier"], o.json()["model"]),
           "anthropic": (a.headers["x-agentdeck-tier"], a.json()["model"])}
    want = {"openai": (tier, "gpt-4o-mini"), "anthropic": (tier, "claude-haiku-4-5")}
    assert got == want


def test_anthropic_version_and_beta_headers_forwarded(gw: Any, contract_mock: Any) -> None:
    c = anthropic.Anthropic(base_url=gw.url, api_key=KEY_DEV, max_retries=0, timeout=30,
                            default_headers={"anthropic-beta": "contract-beta-2025-01-01",
                                             "anthropic-version": "2023-06-01"})
    c.messages.create(model="claude-haiku-4-5", max_tokens=50, messages=[{"role": "user", "content": "hi"}])
    seen = contract_mock.stats()["last_headers"]
    assert seen.get("anthropic-beta") == "contract-beta-2025-01-01", seen
    assert seen.get("anthropic-version") == "2023-06-01", seen


def test_provider_key_sent_upstream_not_the_gateway_key(gw: Any, contract_mock: Any, oai: openai.OpenAI) -> None:
    contract_mock.reset()
    oai.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    seen = set(contract_mock.stats()["api_keys_seen"])
    assert seen == {hashlib.sha256(PROVIDER_KEY_OPENAI.encode()).hexdigest()[:16]}


# -- gateway-made answers: the status table, both protocols ----------------------------
def _stop(http: httpx.Client, reason: str, key: str | None = None) -> None:
    r = http.post("/admin/stop", json={"reason": reason, "key": key}, headers=admin())
    assert r.status_code == 200, r.text


def _resume(http: httpx.Client, key: str | None = None) -> None:
    r = http.post("/admin/resume", json={"key": key}, headers=admin())
    assert r.status_code == 200, r.text


def test_emergency_stop_403_both_protocols(gw_clean: Any, http: httpx.Client, oai: openai.OpenAI,
                                           ant: anthropic.Anthropic) -> None:
    reason = "contract check: runaway loop 7731"
    _stop(http, reason)
    try:
        r = _oai_post(http, "/v1/chat/completions", chat_body())
        assert r.status_code == 403
        assert r.headers.get("x-should-retry") == "false"
        err = _openai_error(r)
        assert "agentdeck_stopped" in (err["code"], err["type"]), err
        assert reason in err["message"] and "resume" in err["message"].lower(), err
        assert r.headers.get("x-agentdeck-request-id")

        r = _ant_post(http, "/v1/messages", messages_body())
        assert r.status_code == 403
        assert r.headers.get("x-should-retry") == "false"
        err = _anthropic_error(r)
        assert err["type"] == "permission_error", err
        assert reason in err["message"] and "resume" in err["message"].lower(), err

        r = _oai_post(http, "/v1/responses", {"model": "fast", "input": "hi"})
        assert r.status_code == 403 and _openai_error(r)["code"] == "agentdeck_stopped"
        # The SDKs see a final PermissionDeniedError (x-should-retry: false: no retries).
        with pytest.raises(openai.PermissionDeniedError):
            oai.chat.completions.create(model="fast", messages=[{"role": "user", "content": "hi"}])
        with pytest.raises(anthropic.PermissionDeniedError):
            ant.messages.create(model="fast", max_tokens=50, messages=[{"role": "user", "content": "hi"}])
    finally:
        _resume(http)
    assert _oai_post(http, "/v1/chat/completions", chat_body()).status_code == 200


def test_gateway_refusals_carry_model_and_tier_headers(gw_clean: Any, http: httpx.Client) -> None:
    """'Every response carries' the three headers, refusals included (values may be empty: no model was used)."""
    _stop(http, "contract header check")
    try:
        r = _oai_post(http, "/v1/chat/completions", chat_body("fast"))
        a = _ant_post(http, "/v1/messages", messages_body("fast"))
    finally:
        _resume(http)
    assert r.status_code == 403 and a.status_code == 403
    for resp in (r, a):
        missing = [h for h in HEADERS if h not in resp.headers]
        assert not missing, f"403 stop answer lacks {missing}: {dict(resp.headers)}"
        assert resp.headers["x-agentdeck-request-id"]


def test_key_stop_affects_only_that_key(gw_clean: Any, http: httpx.Client) -> None:
    _stop(http, "contract: only other", key="other")
    try:
        r = _oai_post(http, "/v1/chat/completions", chat_body(), key=KEY_OTHER)
        assert r.status_code == 403 and _openai_error(r)["code"] == "agentdeck_stopped"
        a = _ant_post(http, "/v1/messages", messages_body(), key=KEY_OTHER)
        assert a.status_code == 403 and _anthropic_error(a)["type"] == "permission_error"
        assert _oai_post(http, "/v1/chat/completions", chat_body(), key=KEY_DEV).status_code == 200
        assert _ant_post(http, "/v1/messages", messages_body(), key=KEY_DEV).status_code == 200
        st = http.get("/admin/status", headers=admin()).json()
        assert st["stopped"] is False
    finally:
        _resume(http, key="other")
    assert _oai_post(http, "/v1/chat/completions", chat_body(), key=KEY_OTHER).status_code == 200


def test_key_budget_exhausted_403_both_protocols(http: httpx.Client) -> None:
    r = _oai_post(http, "/v1/chat/completions", chat_body(), key=KEY_POOR)
    assert r.status_code == 403
    assert r.headers.get("x-should-retry") == "false"
    err = _openai_error(r)
    assert err["code"] == "budget_exceeded", err
    msg = err["message"]
    assert "poor" in msg and "daily" in msg.lower(), msg
    assert any(w in msg.lower() for w in ("reset", "frees", "free up", " at ")), f"no reset time in: {msg}"
    a = _ant_post(http, "/v1/messages", messages_body(), key=KEY_POOR)
    assert a.status_code == 403
    assert a.headers.get("x-should-retry") == "false"
    aerr = _anthropic_error(a)
    assert aerr["type"] == "permission_error", aerr
    assert "poor" in aerr["message"] and "daily" in aerr["message"].lower(), aerr


def test_throttle_429_with_retry_after_both_protocols(http: httpx.Client, contract_mock: Any) -> None:
    """Slots full (1 slot, max_queue_wait_s 0.3) past the queue wait: 429 + retry-after-ms and retry-after <= 60 s.

    Also the slot guarantee: two providers with one slot each never have more than 2 calls upstream.
    """
    slow = "[mock:slow=2500] hold the slot"
    contract_mock.reset()

    def oai_call() -> httpx.Response:
        return _oai_post(http, "/v1/chat/completions", chat_body("gpt-4.1-nano", slow))

    def ant_call() -> httpx.Response:
        return _ant_post(http, "/v1/messages", messages_body("claude-opus-4-1", slow))

    with ThreadPoolExecutor(max_workers=4) as ex:
        first = [ex.submit(oai_call), ex.submit(ant_call)]
        deadline = time.monotonic() + 2.0  # both slots taken before the second wave arrives
        while time.monotonic() < deadline:
            provs = http.get("/admin/status", headers=admin()).json()["providers"]
            if provs["tight_openai"]["in_flight"] == 1 and provs["tight_anthropic"]["in_flight"] == 1:
                break
            time.sleep(0.05)
        second = [ex.submit(oai_call), ex.submit(ant_call)]
        results = [f.result() for f in first + second]
    assert contract_mock.stats()["max_in_flight"] <= 2, contract_mock.stats()
    o_codes = sorted(r.status_code for r in (results[0], results[2]))
    a_codes = sorted(r.status_code for r in (results[1], results[3]))
    assert o_codes == [200, 429], [r.text for r in results]
    assert a_codes == [200, 429], [r.text for r in results]
    for r in results:
        if r.status_code != 429:
            continue
        ms, s = r.headers.get("retry-after-ms"), r.headers.get("retry-after")
        assert ms is not None and s is not None, dict(r.headers)
        assert 0 < float(ms) <= 60_000 and 0 < float(s) <= 60, dict(r.headers)
        assert r.headers.get("x-agentdeck-request-id")
    o429 = results[0] if results[0].status_code == 429 else results[2]
    a429 = results[1] if results[1].status_code == 429 else results[3]
    _openai_error(o429)
    assert _anthropic_error(a429)["type"] == "rate_limit_error"


def test_unknown_or_missing_key_401_both_protocols(http: httpx.Client, gw: Any) -> None:
    for key in (None, "not-a-key"):
        r = _oai_post(http, "/v1/chat/completions", chat_body(), key=key)
        assert r.status_code == 401, r.text
        _openai_error(r)
        assert r.headers.get("x-agentdeck-request-id")
        a = _ant_post(http, "/v1/messages", messages_body(), key=key)
        assert a.status_code == 401, a.text
        assert _anthropic_error(a)["type"] == "authentication_error"
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=gw.url + "/v1", api_key="wrong", max_retries=0).chat.completions.create(
            model="fast", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(anthropic.AuthenticationError):
        anthropic.Anthropic(base_url=gw.url, api_key="wrong", max_retries=0).messages.create(
            model="fast", max_tokens=10, messages=[{"role": "user", "content": "hi"}])


@pytest.mark.parametrize("body,field", [
    ({"model": "fast", "messages": "not-a-list"}, "messages"),
    ({"model": 5, "messages": [{"role": "user", "content": "hi"}]}, "model"),
    ({"model": "fast", "messages": [{"role": "user", "content": "hi"}], "stream": "yes"}, "stream"),
    ({"model": "fast", "messages": [{"role": "user", "content": "hi"}], "max_tokens": -3}, "max_tokens"),
])
def test_bad_request_400_names_the_field_openai(http: httpx.Client, body: dict[str, Any], field: str) -> None:
    r = _oai_post(http, "/v1/chat/completions", body)
    assert r.status_code == 400, r.text
    err = _openai_error(r)
    assert err["param"] == field or field in err["message"], err
    assert r.headers.get("x-agentdeck-request-id")


@pytest.mark.parametrize("body,field", [
    ({"model": "fast", "max_tokens": "many", "messages": [{"role": "user", "content": "hi"}]}, "max_tokens"),
    ({"model": "fast", "max_tokens": 10}, "messages"),
    ({"model": "fast", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}], "stream": 1}, "stream"),
])
def test_bad_request_400_names_the_field_anthropic(http: httpx.Client, body: dict[str, Any], field: str) -> None:
    r = _ant_post(http, "/v1/messages", body)
    assert r.status_code == 400, r.text
    err = _anthropic_error(r)
    assert err["type"] == "invalid_request_error" and field in err["message"], err


def test_malformed_json_400_both_protocols(http: httpx.Client) -> None:
    r = http.post("/v1/chat/completions", content=b'{"model": "fast", "messages": [', headers=auth(KEY_DEV))
    assert r.status_code == 400
    _openai_error(r)
    a = http.post("/v1/messages", content=b'{"model": ', headers={"x-api-key": KEY_DEV})
    assert a.status_code == 400
    assert _anthropic_error(a)["type"] == "invalid_request_error"
    with pytest.raises(openai.BadRequestError):
        openai.OpenAI(base_url=http.base_url.__str__().rstrip("/") + "/v1", api_key=KEY_DEV,
                      max_retries=0).chat.completions.create(model="fast", messages="nope")  # type: ignore[arg-type]


def test_body_over_limit_413_both_protocols(http: httpx.Client) -> None:
    big = "x" * 70_000  # the suite's gateway has max_body_bytes = 65536
    r = _oai_post(http, "/v1/chat/completions", chat_body("fast", big))
    assert r.status_code == 413, r.text[:300]
    _openai_error(r)
    a = _ant_post(http, "/v1/messages", messages_body("fast", big))
    assert a.status_code == 413, a.text[:300]
    assert _anthropic_error(a)["type"] == "request_too_large"


def test_unknown_model_404_both_protocols(http: httpx.Client, oai: openai.OpenAI, ant: anthropic.Anthropic) -> None:
    r = _oai_post(http, "/v1/chat/completions", chat_body("no-such-model-xyz"))
    assert r.status_code == 404
    _openai_error(r)
    a = _ant_post(http, "/v1/messages", messages_body("no-such-model-xyz"))
    assert a.status_code == 404
    assert _anthropic_error(a)["type"] == "not_found_error"
    with pytest.raises(openai.NotFoundError):
        oai.chat.completions.create(model="no-such-model-xyz", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(anthropic.NotFoundError):
        ant.messages.create(model="no-such-model-xyz", max_tokens=10, messages=[{"role": "user", "content": "hi"}])


# -- metrics and admin -----------------------------------------------------------------
def test_metrics_prometheus_text(http: httpx.Client) -> None:
    _oai_post(http, "/v1/chat/completions", chat_body())
    r = http.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    names = {ln.split("{")[0].split(" ")[0] for ln in r.text.splitlines() if ln and not ln.startswith("#")}
    text = " ".join(sorted(names))

    def has(*parts: str) -> bool:
        return any(all(p in n for p in parts) for n in names)

    assert has("request"), text
    assert has("token"), text
    assert has("cost"), text
    assert has("latency", "_bucket") or has("duration", "_bucket"), text
    assert has("limit_slots") and has("limit_requests_per_second"), text  # the AIMD limits, units in the names
    assert has("in_flight"), text
    assert has("rate_limited") or has("429"), text
    assert has("kill") or has("stop"), text


ADMIN_CALLS = [("GET", "/admin/status", None), ("GET", "/admin/requests?limit=1", None), ("GET", "/admin/events", None),
               ("POST", "/admin/stop", {"reason": "nope", "key": None}), ("POST", "/admin/resume", {"key": None})]


@pytest.mark.parametrize("method,path,body", ADMIN_CALLS)
def test_admin_requires_token(http: httpx.Client, method: str, path: str, body: Any) -> None:
    for headers in ({}, auth("wrong-admin-token"), auth(KEY_DEV)):
        r = http.request(method, path, json=body, headers=headers, timeout=5)
        assert r.status_code == 401, (method, path, headers, r.status_code)
    assert http.get("/admin/status", headers=admin()).json()["stopped"] is False


def test_admin_status_shape(http: httpx.Client) -> None:
    st = http.get("/admin/status", headers=admin()).json()
    assert isinstance(st["stopped"], bool)
    assert st["stop_reason"] is None or isinstance(st["stop_reason"], str)
    assert isinstance(st["spend"]["hour_usd"], float) and isinstance(st["spend"]["day_usd"], float), st["spend"]
    assert isinstance(st["budget"]["hourly_usd"], float) and isinstance(st["budget"]["daily_usd"], float)
    assert st["budget"] == {**st["budget"], "hourly_usd": 1000.0, "daily_usd": 5000.0}
    assert {"anthropic", "openai", "tight_anthropic", "tight_openai"} <= set(st["providers"])
    for name, p in st["providers"].items():
        assert isinstance(p["rps_limit"], float), (name, p)
        assert isinstance(p["slots_limit"], int) and not isinstance(p["slots_limit"], bool), (name, p)
        assert isinstance(p["in_flight"], int) and isinstance(p["rate_limited_total"], int), (name, p)
    assert st["providers"]["tight_openai"]["slots_limit"] == 1


REQUEST_FIELDS = ("id", "ts", "key", "model_requested", "model", "tier", "status", "input_tokens", "output_tokens",
                  "cost_usd", "latency_ms")


def test_admin_requests_newest_first_with_every_field(http: httpx.Client) -> None:
    ids = []
    for model in ("fast", "gpt-4o", "smart"):
        r = _oai_post(http, "/v1/chat/completions", chat_body(model))
        assert r.status_code == 200
        ids.append(r.headers["x-agentdeck-request-id"])
    deadline = time.monotonic() + 5
    while True:
        listed = http.get("/admin/requests", params={"limit": 3}, headers=admin()).json()
        got = [x["id"] for x in listed["requests"]]
        if got == ids[::-1] or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert set(listed) >= {"requests"}
    assert got == ids[::-1], (got, ids)
    rows = listed["requests"]
    for row in rows:
        missing = [f for f in REQUEST_FIELDS if f not in row]
        assert not missing, (missing, row)
        assert row["status"] == 200 and row["key"] == "dev"
        assert row["input_tokens"] >= 0 and row["output_tokens"] > 0 and row["cost_usd"] > 0 and row["latency_ms"] >= 0
    assert [r["ts"] for r in rows] == sorted((r["ts"] for r in rows), reverse=True)
    assert [(r["model_requested"], r["model"], r["tier"]) for r in rows] == [
        ("smart", "gpt-4.1", "smart"), ("gpt-4o", "gpt-4o", "balanced"), ("fast", "gpt-4o-mini", "fast")]
    one = http.get("/admin/requests?limit=1", headers=admin()).json()["requests"]
    assert len(one) == 1 and one[0]["id"] == ids[-1]


def test_streamed_requests_are_costed(http: httpx.Client) -> None:
    """'Every request's cost is counted, streamed ones included' (the client did not ask for usage)."""
    ids = []
    with http.stream("POST", "/v1/chat/completions", json=chat_body("fast", stream=True), headers=auth(KEY_DEV)) as r:
        assert r.status_code == 200
        body = b"".join(r.iter_raw())
        ids.append(r.headers["x-agentdeck-request-id"])
    assert b"[DONE]" in body
    with http.stream("POST", "/v1/messages", json=messages_body("fast", stream=True),
                     headers={"x-api-key": KEY_DEV, "anthropic-version": "2023-06-01"}) as r:
        assert r.status_code == 200
        body = b"".join(r.iter_raw())
        ids.append(r.headers["x-agentdeck-request-id"])
    assert b"message_stop" in body
    deadline = time.monotonic() + 5
    rows: dict[str, Any] = {}
    while time.monotonic() < deadline and len(rows) < 2:
        listed = http.get("/admin/requests?limit=20", headers=admin()).json()["requests"]
        rows = {x["id"]: x for x in listed if x["id"] in ids}
        time.sleep(0.1)
    assert set(rows) == set(ids), rows
    for row in rows.values():
        assert row["output_tokens"] > 0 and row["cost_usd"] > 0, row


def test_admin_events_sse_with_type(gw: Any, http: httpx.Client) -> None:
    events: queue.Queue[dict[str, Any]] = queue.Queue()
    ready = threading.Event()
    done = threading.Event()

    def listen() -> None:
        with httpx.Client(timeout=httpx.Timeout(10, read=10)) as c, \
                c.stream("GET", gw.url + "/admin/events", headers=admin()) as r:
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/event-stream")
            ready.set()
            for line in r.iter_lines():
                if line.startswith("data:"):
                    events.put(json.loads(line[5:].strip()))
                if done.is_set():
                    return

    t = threading.Thread(target=listen, daemon=True)
    t.start()
    assert ready.wait(10)
    time.sleep(0.2)
    rid = _oai_post(http, "/v1/chat/completions", chat_body()).headers["x-agentdeck-request-id"]
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + 8
    while time.monotonic() < deadline:
        try:
            ev = events.get(timeout=0.5)
        except queue.Empty:
            continue
        seen.append(ev)
        if rid in json.dumps(ev):
            break
    done.set()
    assert seen, "no events"
    assert all(isinstance(e.get("type"), str) and e["type"] for e in seen), seen
    assert any(rid in json.dumps(e) for e in seen), [e.get("type") for e in seen]


# -- the stop guarantees ---------------------------------------------------------------
def test_stop_refuses_new_calls_within_100ms(gw_clean: Any, http: httpx.Client) -> None:
    with httpx.Client(base_url=gw_clean.url, timeout=10) as fresh:
        fresh.get("/healthz")  # a warm connection, as a client would have
        t0 = time.perf_counter()
        _stop(http, "contract: 100 ms")
        try:
            r = _oai_post(fresh, "/v1/chat/completions", chat_body())
            elapsed = time.perf_counter() - t0
            a = _ant_post(fresh, "/v1/messages", messages_body())
        finally:
            _resume(http)
    assert r.status_code == 403 and a.status_code == 403
    assert elapsed < 0.1, f"stop + first refused call took {elapsed * 1000:.0f} ms"


def test_stop_ends_inflight_streams_within_1s(gw_clean: Any, http: httpx.Client, mock_defaults: Any) -> None:
    mock_defaults.update(token_ms=100.0)  # 200 tokens at 100 ms: a 20 s stream
    outcome: dict[str, float] = {}
    started = threading.Event()

    def consume(path: str, body: dict[str, Any], headers: dict[str, str], name: str) -> None:
        with httpx.Client(timeout=30) as c:
            with c.stream("POST", gw_clean.url + path, json=body, headers=headers) as r:
                for _ in r.iter_raw():
                    started.set()
            outcome[name] = time.perf_counter()

    threads = [
        threading.Thread(target=consume, daemon=True, args=(
            "/v1/chat/completions", chat_body("fast", "[mock:tokens=200] go", stream=True), auth(KEY_DEV), "openai")),
        threading.Thread(target=consume, daemon=True, args=(
            "/v1/messages", messages_body("fast", "[mock:tokens=200] go", max_tokens=1000, stream=True),
            {"x-api-key": KEY_DEV, "anthropic-version": "2023-06-01"}, "anthropic")),
    ]
    for t in threads:
        t.start()
    assert started.wait(10)
    time.sleep(0.5)
    t_stop = time.perf_counter()
    _stop(http, "contract: end streams")
    try:
        for t in threads:
            t.join(5)
    finally:
        _resume(http)
    assert set(outcome) == {"openai", "anthropic"}, outcome
    for name, t_end in outcome.items():
        assert t_end - t_stop < 1.0, f"{name} stream ended {t_end - t_stop:.2f} s after the stop"


# -- last: nothing secret left behind --------------------------------------------------
def test_zz_provider_keys_never_logged_or_returned(gw: Any) -> None:
    time.sleep(0.5)  # let the store flush
    out = gw.served.output()
    for secret in (PROVIDER_KEY_ANTHROPIC, PROVIDER_KEY_OPENAI):
        assert secret not in out
        for f in gw.data_dir.rglob("*"):
            if f.is_file():
                assert secret.encode() not in f.read_bytes(), f
    assert ADMIN_TOKEN not in out
