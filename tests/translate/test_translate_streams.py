"""Translated streams go event by event, and a provider's mid-stream error ends them in the caller's format."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from agentdeck.sim import MockServer
from deck_support import GATEWAY_KEY
from translate_support import translate_config, wait_rows


@pytest.fixture
def gw(make_gateway: Any, mock: MockServer) -> Any:
    return make_gateway(**translate_config(mock.url))


@pytest.mark.parametrize(("path", "body"), [
    ("/v1/messages", {"model": "gpt-4o-mini", "max_tokens": 100, "stream": True,
                      "messages": [{"role": "user", "content": "count slowly"}]}),
    ("/v1/chat/completions", {"model": "claude-haiku-4-5", "stream": True,
                              "messages": [{"role": "user", "content": "count slowly"}]}),
    ("/v1beta/models/claude-haiku-4-5:streamGenerateContent", {"contents": [{"role": "user", "parts": [{"text": "count"}]}]}),
], ids=["anthropic->openai", "openai->anthropic", "gemini->anthropic"])
def test_first_translated_event_arrives_while_the_provider_still_streams(gw: Any, mock: MockServer, path: str,
                                                                         body: dict[str, Any]) -> None:
    mock.update(token_ms=60.0, output_tokens=30)
    headers = {"authorization": f"Bearer {GATEWAY_KEY}", "x-goog-api-key": GATEWAY_KEY}
    with httpx.stream("POST", gw.url + path, json=body, headers=headers, timeout=20) as r:
        assert r.status_code == 200 and "x-agentdeck-translated" in r.headers
        lines = r.iter_lines()
        for line in lines:
            if "model=" in line:  # the first text delta, in the caller's shape
                break
        assert mock.stats()["in_flight"] == 1, "the first text went out before the provider's stream ended"
        rest = "\n".join(lines)
    assert rest.strip(), "the stream went on after the first text"


def test_provider_stream_error_becomes_the_callers_error_event(gw: Any) -> None:
    a = anthropic.Anthropic(base_url=gw.url, api_key=GATEWAY_KEY, max_retries=0, timeout=20)
    with pytest.raises(anthropic.APIStatusError):
        with a.messages.stream(model="gpt-4o-mini", max_tokens=100,
                               messages=[{"role": "user", "content": "go [mock:stream-error]"}]) as s:
            list(s)
    o = openai.OpenAI(base_url=gw.url + "/v1", api_key=GATEWAY_KEY, max_retries=0, timeout=20)
    with pytest.raises(openai.APIError):
        list(o.chat.completions.create(model="claude-haiku-4-5", stream=True,
                                       messages=[{"role": "user", "content": "go [mock:stream-error]"}]))
    rows = wait_rows(gw, 2)
    assert all(r["status"] >= 500 and r["error"].startswith("upstream stream error") for r in rows)


def test_a_model_of_the_callers_own_protocol_is_never_translated(gw: Any) -> None:
    o = openai.OpenAI(base_url=gw.url + "/v1", api_key=GATEWAY_KEY, max_retries=0, timeout=20)
    raw = o.chat.completions.with_raw_response.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    assert "x-agentdeck-translated" not in raw.headers


def test_translation_is_on_by_default_and_can_be_turned_off(make_gateway: Any, mock: MockServer, tmp_path: Path) -> None:
    gw = make_gateway()
    a = anthropic.Anthropic(base_url=gw.url, api_key=GATEWAY_KEY, max_retries=0, timeout=20)
    raw = a.messages.with_raw_response.create(model="gpt-4o", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    assert raw.headers["x-agentdeck-translated"] == "anthropic->openai" and raw.headers["x-agentdeck-model"] == "gpt-4o"
    off = make_gateway(tmp_path / "off", routing={"translate": False})
    a = anthropic.Anthropic(base_url=off.url, api_key=GATEWAY_KEY, max_retries=0, timeout=20)
    with pytest.raises(anthropic.NotFoundError) as nf:
        a.messages.create(model="gpt-4o", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    assert "another protocol" in nf.value.message


def test_a_tier_may_name_another_vendors_model(make_gateway: Any, mock: MockServer) -> None:
    cfg = translate_config(mock.url)
    cfg["routing"]["tiers"] = {"fast": {"anthropic": "gemini-2.5-flash", "openai": "claude-haiku-4-5"}}
    gw = make_gateway(**cfg)
    a = anthropic.Anthropic(base_url=gw.url, api_key=GATEWAY_KEY, max_retries=0, timeout=20)
    raw = a.messages.with_raw_response.create(model="fast", max_tokens=50, messages=[{"role": "user", "content": "hi"}])
    assert raw.headers["x-agentdeck-translated"] == "anthropic->gemini"
    assert raw.headers["x-agentdeck-model"] == "gemini-2.5-flash" and raw.headers["x-agentdeck-tier"] == "fast"
    assert "model=gemini-2.5-flash" in raw.parse().content[0].text
    o = openai.OpenAI(base_url=gw.url + "/v1", api_key=GATEWAY_KEY, max_retries=0, timeout=20)
    r = o.chat.completions.with_raw_response.create(model="fast", messages=[{"role": "user", "content": "hi"}])
    assert r.headers["x-agentdeck-translated"] == "openai->anthropic"
    rows = wait_rows(gw, 2)
    assert {r["provider"] for r in rows} == {"google", "anthropic"} and all(r["tier"] == "fast" for r in rows)


def test_a_cut_translated_stream_is_recorded_as_cut_and_estimated(gw: Any) -> None:
    o = openai.OpenAI(base_url=gw.url + "/v1", api_key=GATEWAY_KEY, max_retries=0, timeout=20)
    with pytest.raises(openai.APIError):
        list(o.chat.completions.create(model="claude-haiku-4-5", stream=True,
                                       messages=[{"role": "user", "content": "go [mock:stream-cut] [mock:tokens=40]"}]))
    [row] = wait_rows(gw, 1)
    assert row["estimated"] is True and row["error"].startswith("upstream stream ended early")
    assert row["output_tokens"] > 0 and row["cost_usd"] > 0
