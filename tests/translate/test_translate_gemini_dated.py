"""The mock names Gemini's versioned model IDs when asked (`dated_models`), like it does for the others."""

from __future__ import annotations

from typing import Any

import anthropic
import httpx

from agentdeck.sim import MockServer
from agentdeck.sim.mock.answers import gemini_dated_model
from deck_support import GATEWAY_KEY
from translate_support import genai_client, translate_config, wait_rows


def test_versioned_ids_are_kept_and_aliases_get_their_stable_version() -> None:
    assert gemini_dated_model("gemini-2.5-flash") == "gemini-2.5-flash-001"
    for kept in ("gemini-2.0-flash-001", "gemini-2.5-flash-preview-09-2025", "gemini-2.5-flash-preview-05-20",
                 "gemini-flash-latest"):
        assert gemini_dated_model(kept) == kept


def test_the_mock_answers_and_lists_versioned_gemini_ids(mock: MockServer) -> None:
    from google import genai
    from google.genai import types

    client = genai.Client(api_key="AIza-test", http_options=types.HttpOptions(
        base_url=mock.url, api_version="v1beta", retry_options=types.HttpRetryOptions(attempts=1)))
    plain = client.models.generate_content(model="gemini-2.5-flash", contents="hi")
    assert plain.model_version == "gemini-2.5-flash"
    mock.update(dated_models=True)
    r = client.models.generate_content(model="gemini-2.5-flash", contents="hi")
    assert r.model_version == "gemini-2.5-flash-001" and r.text.startswith("model=gemini-2.5-flash ")
    chunks = list(client.models.generate_content_stream(model="gemini-2.5-pro-preview-06-05", contents="hi"))
    assert {c.model_version for c in chunks} == {"gemini-2.5-pro-preview-06-05"}, "already dated: unchanged"
    listed = httpx.get(mock.url + "/v1beta/models", headers={"x-goog-api-key": "AIza-test"}).json()["models"]
    assert "models/gemini-2.5-flash-001" in [m["name"] for m in listed]
    assert httpx.get(mock.url + "/v1beta/models").status_code == 403, "no key, no list"
    assert "data" in httpx.get(mock.url + "/v1/models", headers={"authorization": "Bearer sk-x"}).json(), \
        "/v1/models stays the OpenAI-style list"


def test_dated_ids_through_the_gateway(make_gateway: Any, mock: MockServer) -> None:
    mock.update(dated_models=True)
    gw = make_gateway(**translate_config(mock.url))
    client = genai_client(gw)  # kept in a name: a Client closes its connection when collected
    g = client.models.generate_content(model="gemini-2.5-flash-001", contents="hi")
    assert g.model_version == "gemini-2.5-flash-001"
    a = anthropic.Anthropic(base_url=gw.url, api_key=GATEWAY_KEY, max_retries=0, timeout=20)
    raw = a.messages.with_raw_response.create(model="gemini-2.5-pro", max_tokens=50,
                                              messages=[{"role": "user", "content": "hi"}])
    assert raw.headers["x-agentdeck-model"] == "gemini-2.5-pro" and raw.parse().model == "gemini-2.5-pro-001"
    rows = wait_rows(gw, 2)
    assert {r["model"] for r in rows} == {"gemini-2.5-flash-001", "gemini-2.5-pro"} and all(r["cost_usd"] > 0 for r in rows)
