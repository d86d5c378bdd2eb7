"""Tier routing through the real gateway: `auto` with both SDKs, escalation, downgrade, savings."""

from __future__ import annotations

import time
from typing import Any

import anthropic
import httpx
import openai
import pytest

from agentdeck.pricing import BUILTIN_PRICES
from deck_support import ADMIN_TOKEN, GATEWAY_KEY

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def rows(gw: Any, n: int = 20) -> list[dict[str, Any]]:
    time.sleep(0.3)
    return httpx.get(gw.url + f"/admin/requests?limit={n}", headers=ADMIN).json()["requests"]


@pytest.mark.parametrize("task, tier", [
    ("fix the typo in README.md", "fast"),
    ("grep for TODOs in the payments module", "fast"),
    ("add a retry option to the HTTP client in src/client.py and src/config.py, with tests", "balanced"),
    ("design the authentication architecture for our multi-tenant billing service", "smart"),
])
def test_auto_routes_with_both_sdks(gateway: Any, openai_client: openai.OpenAI, anthropic_client: anthropic.Anthropic,
                                    task: str, tier: str) -> None:
    r = openai_client.chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": task}], max_tokens=400)
    assert r.headers["x-agentdeck-tier"] == tier
    assert r.headers["x-agentdeck-model"] == {"fast": "gpt-4o-mini", "balanced": "gpt-4o", "smart": "gpt-4.1"}[tier]
    assert r.headers["x-agentdeck-model"] in r.parse().choices[0].message.content
    a = anthropic_client.messages.with_raw_response.create(
        model="auto", max_tokens=400, messages=[{"role": "user", "content": task}])
    # the tier's cheapest configured model across vendors (each OpenAI model here is cheaper than its Claude peer)
    assert a.headers["x-agentdeck-model"] == r.headers["x-agentdeck-model"]
    assert a.headers["x-agentdeck-translated"] == "anthropic->openai" and a.headers["x-agentdeck-tier"] == tier
    got = rows(gateway, 2)
    assert {g["tier"] for g in got} == {tier} and all(g["model_requested"] == "auto" and g["rule"] for g in got)


def test_escalation_on_truncated_and_invalid_json_is_capped(make_gateway: Any, mock: Any) -> None:
    gw = make_gateway(routing={"max_escalations": 1})
    o = openai.OpenAI(base_url=gw.url + "/v1", api_key=GATEWAY_KEY, max_retries=0)
    r = o.chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": "list the files [mock:truncate]"}], max_tokens=50)
    assert r.headers["x-agentdeck-tier"] == "balanced" and r.headers["x-agentdeck-model"] == "gpt-4o"
    [row] = rows(gw, 1)
    assert row["escalations"] == ["fast->balanced: truncated"] and row["tier"] == "balanced"
    assert mock.stats()["requests"] == 2
    # Both answers were paid for: the row's cost is the sum of the two calls.
    assert row["cost_usd"] > 0
    mock.reset()
    r = o.chat.completions.with_raw_response.create(
        model="auto", response_format={"type": "json_object"},
        messages=[{"role": "user", "content": "rename the variable x to count in utils.py [mock:badjson]"}])
    assert r.headers["x-agentdeck-tier"] == "balanced"
    assert mock.stats()["requests"] == 2, "escalation is capped at max_escalations=1"
    row = rows(gw, 1)[0]
    assert row["escalations"] == ["fast->balanced: invalid-json"]
    # A named model or a named tier is what the caller asked for: never escalated.
    for named in ("gpt-4o-mini", "fast"):
        mock.reset()
        r = o.chat.completions.with_raw_response.create(
            model=named, messages=[{"role": "user", "content": "x [mock:truncate]"}], max_tokens=50)
        assert mock.stats()["requests"] == 1 and r.headers["x-agentdeck-model"] == "gpt-4o-mini"


def test_budget_aware_downgrade_and_savings(make_gateway: Any) -> None:
    gw = make_gateway(budget={"hourly_usd": 0.01, "daily_usd": 100.0}, routing={"downgrade_at": 0.000001})
    sub = gw.bus.subscribe("t", maxlen=100)
    a = anthropic.Anthropic(base_url=gw.url, api_key=GATEWAY_KEY, max_retries=0)
    a.messages.create(model="claude-haiku-4-5", max_tokens=100, messages=[{"role": "user", "content": "warm up spend"}])
    r = a.messages.with_raw_response.create(
        model="auto", max_tokens=100,
        messages=[{"role": "user", "content": "design the security architecture for payments across services"}])
    assert r.headers["x-agentdeck-tier"] == "balanced"
    row = rows(gw, 1)[0]
    assert row["rule"].endswith("+downgrade")
    time.sleep(1.3)
    assert any(e.type == "downgrade" and e.active for e in sub.drain())
    # Savings: the haiku call cost less than the same tokens on the balanced tier (sonnet).
    first = rows(gw, 2)[-1]
    sonnet, haiku = BUILTIN_PRICES["claude-sonnet-4-5"], BUILTIN_PRICES["claude-haiku-4-5"]
    assert first["baseline_cost_usd"] == pytest.approx((first["input_tokens"] * sonnet.input + first["output_tokens"] * sonnet.output) / 1e6)
    assert first["cost_usd"] == pytest.approx((first["input_tokens"] * haiku.input + first["output_tokens"] * haiku.output) / 1e6)
    st = httpx.get(gw.url + "/admin/status", headers=ADMIN).json()
    # the downgraded auto call ran the balanced tier's cheapest model (gpt-4o, translated): it saved too
    both = rows(gw, 2)
    assert both[0]["model"] == "gpt-4o" and both[0]["baseline_cost_usd"] > both[0]["cost_usd"] > 0
    assert st["savings"]["usd"] == pytest.approx(sum(r["baseline_cost_usd"] - r["cost_usd"] for r in both), abs=1e-9)
    assert "agentdeck_savings_usd" in httpx.get(gw.url + "/metrics").text


def test_auto_stream_escalates_on_context_length_before_the_first_byte(gateway: Any, anthropic_client: anthropic.Anthropic,
                                                                       mock: Any) -> None:
    task = "add a retry option to src/client.py and src/config.py with tests [mock:too-long]"
    with anthropic_client.messages.with_streaming_response.create(
            model="auto", max_tokens=200, stream=True, messages=[{"role": "user", "content": task}]) as r:
        # auto takes each tier's cheapest model across vendors: gpt-4o (too long for it), then gpt-4.1
        assert r.headers["x-agentdeck-model"] == "gpt-4.1" and r.headers["x-agentdeck-tier"] == "smart"
        assert r.headers["x-agentdeck-translated"] == "anthropic->openai"
        text = "".join(r.iter_text())
    assert "model=gpt-4.1" in text and "prompt is too long" not in text and "event: message_stop" in text
    row = rows(gateway, 1)[0]
    assert row["escalations"] == ["balanced->smart: context-length"] and row["stream"] is True and row["status"] == 200
    assert mock.stats()["requests"] == 2
