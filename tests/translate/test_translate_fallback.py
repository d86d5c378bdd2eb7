"""A provider's `fallback` may speak another protocol: the call is translated to it, the caller keeps its own."""

from __future__ import annotations

from typing import Any, Iterator

import anthropic
import openai
import pytest

from agentdeck.config import parse_config
from agentdeck.errors import ConfigError
from agentdeck.pricing import PriceTable
from agentdeck.sim import MockServer
from deck_support import GATEWAY_KEY
from translate_support import admin_get, gemini_provider, genai_client, wait_rows

FAILING = {"breaker": {"failure_threshold": 1, "open_for_s": 30},
           "retry": {"max_retries": 1, "backoff_base_s": 0.01, "backoff_max_s": 0.02}}
"""The first 500 opens the breaker, and the call's one retry already goes to the fallback."""
TIERS = {"fast": {"anthropic": "claude-haiku-4-5", "openai": "gpt-4o-mini", "gemini": "gemini-2.5-flash"}}


@pytest.fixture
def dead() -> Iterator[MockServer]:
    """A provider that answers every call with a 500."""
    with MockServer(rate_5xx=1.0) as m:
        yield m


def _gateway(make_gateway: Any, mock: MockServer, dead: MockServer, primary: str, fallback: str,
             **routing: Any) -> Any:
    providers: dict[str, Any] = {"google": gemini_provider(mock.url)}
    base = {"anthropic": {"protocol": "anthropic", "models": ["claude-haiku-4-5", "claude-sonnet-4-5"]},
            "openai": {"protocol": "openai", "models": ["gpt-4o-mini", "gpt-4o"]},
            "google": gemini_provider(mock.url)}[primary]
    providers[primary] = {**base, "base_url": dead.url, "api_key": "provider-key-SECRET-1234", "fallback": fallback,
                          **FAILING}
    return make_gateway(providers=providers, routing={"tiers": TIERS, **routing})


def _row(gw: Any) -> dict[str, Any]:
    return wait_rows(gw, 1)[0]


def test_anthropic_caller_falls_back_to_an_openai_provider(make_gateway: Any, mock: MockServer,
                                                           dead: MockServer) -> None:
    gw = _gateway(make_gateway, mock, dead, "anthropic", "openai")
    a = anthropic.Anthropic(base_url=gw.url, api_key=GATEWAY_KEY, max_retries=0, timeout=20)
    raw = a.messages.with_raw_response.create(model="claude-haiku-4-5", max_tokens=100,
                                              messages=[{"role": "user", "content": "hello there"}])
    msg = raw.parse()
    assert dead.stats()["requests"] == 1, "one failed attempt opened the breaker; the retry went to the fallback"
    assert raw.headers["x-agentdeck-translated"] == "anthropic->openai"
    assert raw.headers["x-agentdeck-model"] == "gpt-4o-mini", "the same tier's model that the fallback serves"
    assert msg.type == "message" and "model=gpt-4o-mini" in msg.content[0].text
    row = _row(gw)
    assert (row["provider"], row["fallback_from"], row["model"], row["status"]) == ("openai", "anthropic", "gpt-4o-mini", 200)
    assert row["attempts"] == 2 and row["input_tokens"] == msg.usage.input_tokens
    p = PriceTable(gw.cfg).get("gpt-4o-mini", "openai")
    assert row["cost_usd"] == pytest.approx((row["input_tokens"] * p.input + row["output_tokens"] * p.output) / 1e6)
    # streamed, with the breaker still open: straight to the fallback, event by event in Anthropic's shape
    with a.messages.stream(model="claude-haiku-4-5", max_tokens=100, messages=[{"role": "user", "content": "more"}]) as s:
        events = [e.type for e in s]
        final = s.get_final_message()
        assert s.response.headers["x-agentdeck-translated"] == "anthropic->openai"
    assert events[0] == "message_start" and "model=gpt-4o-mini" in final.content[0].text
    assert dead.stats()["requests"] == 1
    rows = wait_rows(gw, 2)
    assert rows[0]["provider"] == "openai" and rows[0]["output_tokens"] == final.usage.output_tokens > 0
    status = admin_get(gw, "/admin/status")
    st = status["providers"]
    assert st["openai"]["in_flight"] == 0 and st["anthropic"]["in_flight"] == 0
    # the budget holds (the provider's and the fallback's) are settled to what the fallback's answers cost
    assert status["spend"]["reserved_usd"] == pytest.approx(0.0, abs=1e-12)
    assert status["spend"]["hour_usd"] == pytest.approx(sum(r["cost_usd"] for r in rows), abs=1e-6)  # shown to 6 places


def test_a_translated_call_falls_back_to_the_callers_own_protocol(make_gateway: Any, mock: MockServer,
                                                                   dead: MockServer) -> None:
    """An OpenAI caller of a Claude model (translated to Anthropic) whose fallback is OpenAI: no translation."""
    gw = _gateway(make_gateway, mock, dead, "anthropic", "openai")
    o = openai.OpenAI(base_url=gw.url + "/v1", api_key=GATEWAY_KEY, max_retries=0, timeout=20)
    raw = o.chat.completions.with_raw_response.create(model="claude-haiku-4-5",
                                                      messages=[{"role": "user", "content": "hi"}])
    assert "x-agentdeck-translated" not in raw.headers and raw.headers["x-agentdeck-model"] == "gpt-4o-mini"
    assert raw.parse().choices[0].message.content.startswith("model=gpt-4o-mini")
    row = _row(gw)
    assert (row["provider"], row["fallback_from"]) == ("openai", "anthropic")


def test_openai_caller_falls_back_to_gemini_and_errors_come_back_as_openai(make_gateway: Any, mock: MockServer,
                                                                          dead: MockServer) -> None:
    gw = _gateway(make_gateway, mock, dead, "openai", "google")
    o = openai.OpenAI(base_url=gw.url + "/v1", api_key=GATEWAY_KEY, max_retries=0, timeout=20)
    raw = o.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    assert raw.headers["x-agentdeck-translated"] == "openai->gemini"
    assert raw.headers["x-agentdeck-model"] == "gemini-2.5-flash"
    chunks = list(o.chat.completions.create(model="gpt-4o-mini", stream=True, messages=[{"role": "user", "content": "x"}]))
    assert "model=gemini-2.5-flash" in "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    # the fallback's own error reaches the caller as an OpenAI error with the same status
    with pytest.raises(openai.BadRequestError):
        o.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "x [mock:error=400]"}])
    rows = wait_rows(gw, 3)
    assert [r["provider"] for r in rows] == ["google"] * 3 and all(r["fallback_from"] == "openai" for r in rows)
    google = genai_client(gw)
    assert "model=gemini-2.5-flash" in google.models.generate_content(model="gemini-2.5-flash", contents="hi").text


def test_a_model_the_fallback_has_no_peer_for_stays_on_its_provider(make_gateway: Any, mock: MockServer,
                                                                   dead: MockServer) -> None:
    """claude-sonnet-4-5 is balanced, and the balanced tier names no model the Gemini fallback serves."""
    gw = _gateway(make_gateway, mock, dead, "anthropic", "google")
    a = anthropic.Anthropic(base_url=gw.url, api_key=GATEWAY_KEY, max_retries=0, timeout=20)
    with pytest.raises(anthropic.InternalServerError):  # the primary's own 500, in Anthropic's shape
        a.messages.create(model="claude-sonnet-4-5", max_tokens=50, messages=[{"role": "user", "content": "x"}])
    row = _row(gw)
    assert (row["provider"], row["fallback_from"], row["status"]) == ("anthropic", None, 500)
    assert mock.stats()["requests"] == 0, "nothing was sent to the fallback"


def test_a_fallback_of_another_protocol_needs_translation() -> None:
    providers = {"a": {"protocol": "anthropic", "base_url": "http://127.0.0.1:9", "fallback": "o"},
                 "o": {"protocol": "openai", "base_url": "http://127.0.0.1:9"}}
    assert parse_config({"providers": providers}, "t", environ={}).providers["a"].fallback == "o"
    with pytest.raises(ConfigError, match=r"providers\.a\.fallback: 'o' speaks openai, not anthropic; .*translate = true"):
        parse_config({"providers": providers, "routing": {"translate": False}}, "t", environ={})


def test_a_fallback_the_budget_cannot_hold_is_not_taken(make_gateway: Any, mock: MockServer, dead: MockServer) -> None:
    """The fallback's worst case is held before it is sent; priced past the budget, the call stays on its provider."""
    providers = {"anthropic": {"protocol": "anthropic", "models": ["claude-haiku-4-5"], "base_url": dead.url,
                               "api_key": "provider-key-SECRET-1234", "fallback": "openai", **FAILING}}
    gw = make_gateway(providers=providers, routing={"tiers": TIERS},
                      prices={"gpt-4o-mini": {"input": 1e9, "output": 1e9}})  # worst case far past the $1000 hour
    a = anthropic.Anthropic(base_url=gw.url, api_key=GATEWAY_KEY, max_retries=0, timeout=20)
    with pytest.raises(anthropic.InternalServerError):
        a.messages.create(model="claude-haiku-4-5", max_tokens=100, messages=[{"role": "user", "content": "x"}])
    row = _row(gw)
    assert (row["provider"], row["fallback_from"], row["status"]) == ("anthropic", None, 500)
    assert mock.stats()["requests"] == 0
    assert admin_get(gw, "/admin/status")["spend"]["reserved_usd"] == pytest.approx(0.0, abs=1e-12)


def test_a_responses_caller_falls_back_to_anthropic(make_gateway: Any, mock: MockServer, dead: MockServer) -> None:
    gw = _gateway(make_gateway, mock, dead, "openai", "anthropic")
    o = openai.OpenAI(base_url=gw.url + "/v1", api_key=GATEWAY_KEY, max_retries=0, timeout=20)
    raw = o.responses.with_raw_response.create(model="gpt-4o", input="hi", max_output_tokens=60)
    resp = raw.parse()
    assert raw.headers["x-agentdeck-translated"] == "openai->anthropic"
    assert raw.headers["x-agentdeck-model"] == "claude-sonnet-4-5", "gpt-4o is balanced: the balanced Claude model"
    assert resp.output_text.startswith("model=claude-sonnet-4-5")
    with o.responses.stream(model="gpt-4o", input="more", max_output_tokens=60) as s:
        kinds = [e.type for e in s]
        final = s.get_final_response()
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    assert final.output_text.startswith("model=claude-sonnet-4-5") and final.usage is not None
    rows = wait_rows(gw, 2)
    assert [(r["provider"], r["fallback_from"], r["status"]) for r in rows] == [("anthropic", "openai", 200)] * 2
