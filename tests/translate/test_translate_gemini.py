"""Gemini as a client endpoint and a provider protocol (no translation), through the google-genai SDK."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from google.genai import errors, types

from agentdeck.pricing import PriceTable, Usage
from agentdeck.sim import MockServer
from deck_support import GATEWAY_KEY
from translate_support import PROVIDER_KEY_GOOGLE, admin_get, gemini_provider, genai_client, wait_rows


@pytest.fixture
def gw(make_gateway: Any, mock: MockServer) -> Any:
    return make_gateway(providers={"google": gemini_provider(mock.url)})


def _cost(gw: Any, row: dict[str, Any]) -> float:
    return PriceTable(gw.gateway.cfg).cost(row["model"], Usage(input_tokens=row["input_tokens"],
                                                               output_tokens=row["output_tokens"]), "google")


@pytest.mark.parametrize("api_version", [None, "v1beta"])
def test_generate_content_priced_from_usage_metadata(gw: Any, mock: MockServer, api_version: str | None) -> None:
    client = genai_client(gw, api_version)
    r = client.models.generate_content(model="gemini-2.5-flash", contents="say hello",
                                       config=types.GenerateContentConfig(max_output_tokens=64))
    assert "model=gemini-2.5-flash" in r.text
    assert r.sdk_http_response.headers["x-agentdeck-model"] == "gemini-2.5-flash"
    [row] = wait_rows(gw, 1)
    assert row["provider"] == "google" and row["status"] == 200
    assert row["input_tokens"] == r.usage_metadata.prompt_token_count
    assert row["output_tokens"] == r.usage_metadata.candidates_token_count
    assert row["estimated"] is False
    assert row["cost_usd"] > 0 and row["cost_usd"] == pytest.approx(_cost(gw, row))
    seen = mock.stats()["last_headers"]
    assert seen["x-goog-api-key"] == f"<redacted-len-{len(PROVIDER_KEY_GOOGLE)}>"
    assert "authorization" not in seen
    assert next(iter(mock.stats()["by_path"])) == "/v1beta/models/gemini-2.5-flash:generateContent"


def test_stream_generate_content_counts_final_usage(gw: Any) -> None:
    client = genai_client(gw)
    chunks = list(client.models.generate_content_stream(model="gemini-2.5-pro", contents="stream please"))
    text = "".join(c.text or "" for c in chunks)
    assert "model=gemini-2.5-pro" in text and len(chunks) > 3
    final = chunks[-1].usage_metadata
    [row] = wait_rows(gw, 1)
    assert row["stream"] is True and row["estimated"] is False and row["status"] == 200
    assert row["output_tokens"] == final.candidates_token_count
    assert row["input_tokens"] == final.prompt_token_count
    assert row["cost_usd"] == pytest.approx(_cost(gw, row))


def test_cached_and_thought_tokens_are_split(gw: Any, mock: MockServer) -> None:
    mock.update(cached_tokens=40, reasoning_tokens=12)
    client = genai_client(gw)  # held: the SDK closes its HTTP client when the Client is collected
    r = client.models.generate_content(model="gemini-2.5-flash", contents="think [mock:reasoning=12]")
    u = r.usage_metadata
    assert u.cached_content_token_count == 40 and u.thoughts_token_count == 12
    [row] = wait_rows(gw, 1)
    assert row["input_tokens"] == u.prompt_token_count - 40
    assert row["output_tokens"] == u.candidates_token_count + 12
    prices = PriceTable(gw.gateway.cfg)
    split = prices.cost("gemini-2.5-flash", Usage(input_tokens=row["input_tokens"], output_tokens=row["output_tokens"],
                                                  cache_read_tokens=40), "google")
    assert row["cost_usd"] == pytest.approx(split) and split < _cost(gw, {**row, "input_tokens": u.prompt_token_count})


def test_provider_400_and_429_reach_the_sdk_in_googles_shape(gw: Any, mock: MockServer) -> None:
    client = genai_client(gw)
    with pytest.raises(errors.ClientError) as e400:
        client.models.generate_content(model="gemini-2.5-flash", contents="[mock:error=400]")
    assert e400.value.code == 400 and e400.value.status == "INVALID_ARGUMENT"
    before = admin_get(gw, "/admin/status")
    with pytest.raises(errors.ClientError) as e429:
        client.models.generate_content(model="gemini-2.5-flash", contents="[mock:error=429]")
    assert e429.value.code == 429 and e429.value.status == "RESOURCE_EXHAUSTED"
    details = e429.value.details["error"]["details"]
    assert details[0]["retryDelay"] == "1s"
    after = admin_get(gw, "/admin/status")
    assert _throttled(after) > _throttled(before), "a Gemini 429 must feed the provider's AIMD"


def _throttled(status: Any) -> int:
    google = status["providers"]["google"] if "providers" in status else status["google"]
    return int(google.get("rate_limited_total", 0))


def test_key_from_query_string_and_refusals_in_googles_shape(gw: Any) -> None:
    url = gw.url + "/v1beta/models/gemini-2.5-flash:generateContent"
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    ok = httpx.post(url + f"?key={GATEWAY_KEY}", json=body, timeout=10)
    assert ok.status_code == 200 and ok.json()["candidates"][0]["content"]["parts"][0]["text"]
    bad = httpx.post(url, json=body, headers={"x-goog-api-key": "wrong"}, timeout=10)
    assert bad.status_code == 401
    assert bad.json()["error"]["status"] == "UNAUTHENTICATED" and bad.json()["error"]["code"] == 401
    unknown = httpx.post(gw.url + "/v1beta/models/nope-1:generateContent", json=body,
                         headers={"x-goog-api-key": GATEWAY_KEY}, timeout=10)
    assert unknown.status_code == 404 and unknown.json()["error"]["status"] == "NOT_FOUND"
    bad_limit = httpx.post(url, json={**body, "generationConfig": {"maxOutputTokens": -1}},
                           headers={"x-goog-api-key": GATEWAY_KEY}, timeout=10)
    assert bad_limit.status_code == 400
    assert bad_limit.json()["error"]["details"][0]["metadata"]["field"] == "generationConfig.maxOutputTokens"


def test_token_cap_reaches_generation_config(make_gateway: Any, mock: MockServer) -> None:
    gw = make_gateway(providers={"google": gemini_provider(mock.url)}, caps={"max_tokens": 7})
    client = genai_client(gw)
    r = client.models.generate_content(model="gemini-2.5-flash", contents="long answer [mock:tokens=50]")
    assert r.candidates[0].finish_reason == types.FinishReason.MAX_TOKENS
    assert r.usage_metadata.candidates_token_count == 7
