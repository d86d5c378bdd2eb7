"""The official SDKs, unchanged, through the real gateway against the mock provider."""

from __future__ import annotations

import sqlite3
import time
from typing import Any

import anthropic
import httpx
import openai
import pytest

from agentdeck.pricing import BUILTIN_PRICES
from deck_support import ADMIN_TOKEN, GATEWAY_KEY, PROVIDER_KEY_ANTHROPIC, PROVIDER_KEY_OPENAI


def admin_get(gw: Any, path: str) -> Any:
    r = httpx.get(gw.url + path, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=10)
    r.raise_for_status()
    return r.json()


def wait_rows(gw: Any, n: int, timeout: float = 5.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        rows = admin_get(gw, f"/admin/requests?limit={max(n, 50)}")["requests"]
        if len(rows) >= n or time.monotonic() > deadline:
            return rows
        time.sleep(0.05)


def expected_cost(model: str, r: dict[str, Any], cache_read: int = 0, cache_write: int = 0) -> float:
    p = BUILTIN_PRICES[model]
    return (r["input_tokens"] * p.input + r["output_tokens"] * p.output) / 1e6


def test_openai_chat_non_stream_priced_and_tagged(gateway: Any, openai_client: openai.OpenAI) -> None:
    raw = openai_client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "say hello"}], max_tokens=50)
    resp = raw.parse()
    assert "gpt-4o-mini" in resp.choices[0].message.content
    assert raw.headers["x-agentdeck-model"] == "gpt-4o-mini"
    assert raw.headers["x-agentdeck-tier"] == "fast"
    assert raw.headers["x-agentdeck-request-id"].startswith("req_")
    [row] = wait_rows(gateway, 1)
    assert row["id"] == raw.headers["x-agentdeck-request-id"]
    assert row["input_tokens"] == resp.usage.prompt_tokens and row["output_tokens"] == resp.usage.completion_tokens
    assert row["cost_usd"] == pytest.approx(expected_cost("gpt-4o-mini", row))
    assert row["cost_usd"] > 0 and row["status"] == 200 and row["key"] == "dev"


def test_openai_stream_usage_counted_even_when_client_did_not_ask(gateway: Any, openai_client: openai.OpenAI) -> None:
    chunks = list(openai_client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "stream please"}], stream=True, max_tokens=40))
    assert chunks, "stream produced nothing"
    assert all(c.usage is None for c in chunks), "the client did not ask for usage; it must not get a usage chunk"
    assert all(c.choices for c in chunks)
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert "gpt-4o" in text
    [row] = wait_rows(gateway, 1)
    assert row["stream"] is True and row["estimated"] is False
    assert row["output_tokens"] > 0 and row["cost_usd"] == pytest.approx(expected_cost("gpt-4o", row))


def test_openai_stream_with_include_usage_forwards_usage(gateway: Any, openai_client: openai.OpenAI) -> None:
    chunks = list(openai_client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "hi"}], stream=True,
        stream_options={"include_usage": True}))
    usage = [c.usage for c in chunks if c.usage is not None]
    assert len(usage) == 1
    [row] = wait_rows(gateway, 1)
    assert row["output_tokens"] == usage[0].completion_tokens


def test_openai_responses_api_both_modes(gateway: Any, openai_client: openai.OpenAI) -> None:
    r = openai_client.responses.create(model="gpt-4.1", input="summarise this", max_output_tokens=64)
    assert "gpt-4.1" in r.output_text
    events = list(openai_client.responses.create(model="gpt-4.1", input="stream it", stream=True))
    assert events[-1].type == "response.completed"
    rows = wait_rows(gateway, 2)
    assert {r["stream"] for r in rows} == {True, False}
    for row in rows:
        assert row["output_tokens"] > 0 and row["cost_usd"] == pytest.approx(expected_cost("gpt-4.1", row))


def test_anthropic_messages_both_modes_and_count_tokens(gateway: Any, anthropic_client: anthropic.Anthropic, mock: Any) -> None:
    raw = anthropic_client.messages.with_raw_response.create(
        model="claude-haiku-4-5", max_tokens=100, messages=[{"role": "user", "content": "hello"}],
        extra_headers={"anthropic-beta": "prompt-caching-2024-07-31"})
    msg = raw.parse()
    assert "claude-haiku-4-5" in msg.content[0].text
    assert raw.headers["x-agentdeck-model"] == "claude-haiku-4-5"
    seen = mock.stats()["last_headers"]
    assert seen.get("anthropic-version") and seen.get("anthropic-beta") == "prompt-caching-2024-07-31"
    with anthropic_client.messages.stream(model="claude-sonnet-4-5", max_tokens=100,
                                          messages=[{"role": "user", "content": "stream"}]) as s:
        text = "".join(s.text_stream)
        final = s.get_final_message()
    assert "claude-sonnet-4-5" in text
    ct = anthropic_client.messages.count_tokens(model="claude-haiku-4-5", messages=[{"role": "user", "content": "x" * 400}])
    assert ct.input_tokens > 50
    rows = wait_rows(gateway, 3)
    by_model = {(r["model"], r["stream"]): r for r in rows if r["cost_usd"] > 0}
    streamed = by_model[("claude-sonnet-4-5", True)]
    assert streamed["output_tokens"] == final.usage.output_tokens
    assert streamed["cost_usd"] == pytest.approx(expected_cost("claude-sonnet-4-5", streamed))
    unary = by_model[("claude-haiku-4-5", False)]
    assert unary["input_tokens"] == msg.usage.input_tokens


def test_aliases_map_to_tier_models(gateway: Any, openai_client: openai.OpenAI, anthropic_client: anthropic.Anthropic) -> None:
    raw = openai_client.chat.completions.with_raw_response.create(model="smart", messages=[{"role": "user", "content": "x"}])
    assert raw.headers["x-agentdeck-model"] == "gpt-4.1" and raw.headers["x-agentdeck-tier"] == "smart"
    raw = anthropic_client.messages.with_raw_response.create(model="fast", max_tokens=200, messages=[{"role": "user", "content": "x"}])
    assert raw.headers["x-agentdeck-model"] == "claude-haiku-4-5"
    models = {m.id for m in openai_client.models.list()}
    assert {"auto", "fast", "balanced", "smart", "gpt-4o", "claude-opus-4-5"} <= models
    amodels = {m.id for m in anthropic_client.models.list()}
    assert {"auto", "claude-haiku-4-5"} <= amodels


def test_errors_come_in_the_callers_format(gateway: Any) -> None:
    bad_o = openai.OpenAI(base_url=gateway.url + "/v1", api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad_o.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
    bad_a = anthropic.Anthropic(base_url=gateway.url, api_key="wrong", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError) as ae:
        bad_a.messages.create(model="claude-haiku-4-5", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    assert ae.value.body["type"] == "error" and ae.value.body["error"]["type"] == "authentication_error"
    o = openai.OpenAI(base_url=gateway.url + "/v1", api_key=GATEWAY_KEY, max_retries=0)
    with pytest.raises(openai.NotFoundError) as nf:
        o.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "x"}])
    assert "no-such-model" in nf.value.message
    with pytest.raises(openai.BadRequestError) as br:
        o.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}], max_tokens=-3)
    assert br.value.body["param"] == "max_tokens"
    a = anthropic.Anthropic(base_url=gateway.url, api_key=GATEWAY_KEY, max_retries=0)
    with pytest.raises(anthropic.BadRequestError) as abr:
        a.messages.create(model="claude-haiku-4-5", max_tokens=5, stream=False, messages=[{"role": "user", "content": "x"}],
                          extra_body={"max_tokens": "5"})
    assert "max_tokens" in abr.value.message  # roles and blocks are the provider's to judge; token limits are ours
    with pytest.raises(anthropic.NotFoundError) as anf:
        a.messages.create(model="gpt-5", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    assert anf.value.body["type"] == "error" and "gpt-5" in anf.value.message
    # another vendor's configured model is translated (on by default), not a 404
    raw = a.messages.with_raw_response.create(model="gpt-4o", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    assert raw.headers["x-agentdeck-translated"] == "anthropic->openai" and raw.parse().type == "message"


def test_bad_input_rows_of_the_contract(gateway: Any) -> None:
    h = {"Authorization": f"Bearer {GATEWAY_KEY}", "content-type": "application/json"}
    url = gateway.url
    r = httpx.post(url + "/v1/chat/completions", content=b"{not json", headers=h)
    assert r.status_code == 400 and "not valid JSON" in r.json()["error"]["message"]
    r = httpx.post(url + "/v1/chat/completions", json={"model": "gpt-4o", "messages": "hi"}, headers=h)
    assert r.status_code == 400 and r.json()["error"]["param"] == "messages"
    r = httpx.post(url + "/v1/messages", json={"model": "claude-haiku-4-5", "messages": [{"role": "user", "content": "x"}]},
                   headers=h)
    assert r.status_code == 400 and r.json()["type"] == "error" and "max_tokens" in r.json()["error"]["message"]
    r = httpx.post(url + "/v1/chat/completions", json={"model": "gpt-4o", "messages": [], "stream": "yes"}, headers=h)
    assert r.status_code == 400
    big = b'{"model": "gpt-4o", "messages": [{"role": "user", "content": "' + b"x" * (9 * 1024 * 1024) + b'"}]}'
    r = httpx.post(url + "/v1/chat/completions", content=big, headers=h)
    assert r.status_code == 413
    r = httpx.post(url + "/v1/chat/completions", json={"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}]})
    assert r.status_code == 401
    r = httpx.post(url + "/v1/chat/completions", json={"model": "nope", "messages": [{"role": "user", "content": "x"}]}, headers=h)
    assert r.status_code == 404
    r = httpx.get(url + "/admin/status")
    assert r.status_code == 401


def test_ops_endpoints(gateway: Any, openai_client: openai.OpenAI) -> None:
    openai_client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}])
    assert httpx.get(gateway.url + "/healthz").json() == {"status": "ok"}
    metrics = httpx.get(gateway.url + "/metrics").text
    assert 'agentdeck_requests_total{model="gpt-4o-mini",provider="openai",status="200",tier="fast"} 1.0' in metrics
    assert "agentdeck_request_latency_seconds_bucket" in metrics and "agentdeck_in_flight" in metrics
    st = admin_get(gateway, "/admin/status")
    assert st["stopped"] is False and st["stop_reason"] is None
    assert set(st["spend"]) >= {"hour_usd", "day_usd"} and set(st["budget"]) == {"hourly_usd", "daily_usd"}
    prov = st["providers"]["openai"]
    assert {"rps_limit", "slots_limit", "in_flight", "rate_limited_total"} <= set(prov)
    assert st["spend"]["day_usd"] > 0


def test_secrets_never_reach_db_events_or_logs(make_gateway: Any, tmp_path: Any, capfd: Any) -> None:
    gw = make_gateway(gateway={"log_bodies": True})
    sub = gw.bus.subscribe("test", maxlen=1000)
    o = openai.OpenAI(base_url=gw.url + "/v1", api_key=GATEWAY_KEY, max_retries=0)
    o.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": f"my key is {PROVIDER_KEY_OPENAI}"}])
    a = anthropic.Anthropic(base_url=gw.url, api_key=GATEWAY_KEY, max_retries=0)
    with a.messages.stream(model="claude-haiku-4-5", max_tokens=20, messages=[{"role": "user", "content": "x"}]) as s:
        s.get_final_message()
    with pytest.raises(openai.NotFoundError):
        o.chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])
    wait_rows(gw, 2)
    events = "".join(repr(e.to_dict()) for e in sub.drain())
    gw.stop()
    blob = b""
    for f in (tmp_path / "data").iterdir():
        blob += f.read_bytes()
    out, err = capfd.readouterr()
    for secret in (PROVIDER_KEY_ANTHROPIC, PROVIDER_KEY_OPENAI, GATEWAY_KEY, ADMIN_TOKEN):
        assert secret.encode() not in blob
        assert secret not in events
        assert secret not in out and secret not in err
    # log_bodies stored the prompt, redacted
    db = sqlite3.connect(tmp_path / "data" / "agentdeck.db")
    bodies = [r[0] for r in db.execute("SELECT request_body FROM requests WHERE request_body IS NOT NULL")]
    assert any("[redacted]" in b for b in bodies)


def test_cut_stream_is_estimated_not_free(gateway: Any) -> None:
    h = {"Authorization": f"Bearer {GATEWAY_KEY}"}
    with httpx.stream("POST", gateway.url + "/v1/chat/completions", headers=h, timeout=20,
                      json={"model": "gpt-4o", "stream": True, "max_tokens": 200,
                            "messages": [{"role": "user", "content": "write a lot [mock:tokens=120] [mock:stream-cut]"}]}) as r:
        body = b"".join(r.iter_bytes())
    assert b'"upstream_stream_cut"' in body, "the client must learn the stream ended early"
    [row] = wait_rows(gateway, 1)
    assert row["estimated"] is True and row["output_tokens"] > 0 and row["cost_usd"] > 0
    assert row["error"] and "ended early" in row["error"]



def test_a_model_with_no_price_is_charged_the_default_and_warned(make_gateway: Any, mock: Any) -> None:
    gw = make_gateway(providers={"openai": {"protocol": "openai", "base_url": mock.url, "api_key": "sk-x",
                                            "models": ["gpt-4o-mini", "mystery-model-9"]}},
                      gateway={"default_price_input": 20.0, "default_price_output": 80.0})
    sub = gw.bus.subscribe("t", types={"alert"})
    o = openai.OpenAI(base_url=gw.url + "/v1", api_key=GATEWAY_KEY, max_retries=0)
    o.chat.completions.create(model="mystery-model-9", messages=[{"role": "user", "content": "x"}])
    [row] = wait_rows(gw, 1)
    assert row["cost_usd"] == pytest.approx((row["input_tokens"] * 20.0 + row["output_tokens"] * 80.0) / 1e6)
    alerts = [e for e in sub.drain() if e.kind == "unpriced-model"]
    assert len(alerts) == 1 and "mystery-model-9" in alerts[0].message


def test_a_provider_that_breaks_off_mid_answer_gets_a_502_not_a_traceback(make_gateway: Any, capfd: Any) -> None:
    import socket
    import threading

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)

    def serve() -> None:
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 500\r\n\r\n{\"id\": ")
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    url = f"http://127.0.0.1:{srv.getsockname()[1]}"
    gw = make_gateway(providers={"openai": {"protocol": "openai", "base_url": url, "api_key": "sk-x",
                                            "models": ["gpt-4o-mini"], "retry": {"max_retries": 0}}})
    o = openai.OpenAI(base_url=gw.url + "/v1", api_key=GATEWAY_KEY, max_retries=0)
    with pytest.raises(openai.APIStatusError) as e:
        o.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}])
    srv.close()
    assert e.value.status_code == 502 and "broke off" in e.value.message
    st = httpx.get(gw.url + "/admin/status", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}).json()
    assert st["providers"]["openai"]["in_flight"] == 0 and st["spend"]["open_reservations"] == 0
    assert "Traceback" not in capfd.readouterr().err
