"""A tier may name one model for every calling protocol; Gemini callers use tiers like the others."""

from __future__ import annotations

from typing import Any

import anthropic
import httpx
import openai

from agentdeck.config import parse_config
from agentdeck.sim import MockServer
from deck_support import GATEWAY_KEY
from translate_support import genai_client, translate_config, wait_rows


def test_a_string_tier_is_one_model_for_every_protocol() -> None:
    cfg = parse_config({"routing": {"tiers": {"fast": "gemini-2.5-flash"}}})
    fast = cfg.routing.tiers["fast"]
    assert (fast.anthropic, fast.openai, fast.gemini) == ("gemini-2.5-flash",) * 3
    assert cfg.routing.tiers["smart"].anthropic == "claude-opus-4-5", "the other tiers keep their defaults"


def test_every_caller_reaches_the_one_model_of_a_tier(make_gateway: Any, mock: MockServer) -> None:
    cfg = translate_config(mock.url)
    cfg["routing"]["tiers"] = {"fast": "gemini-2.5-flash"}
    gw = make_gateway(**cfg)
    a = anthropic.Anthropic(base_url=gw.url, api_key=GATEWAY_KEY, max_retries=0, timeout=20)
    ra = a.messages.with_raw_response.create(model="fast", max_tokens=50, messages=[{"role": "user", "content": "hi"}])
    assert ra.headers["x-agentdeck-translated"] == "anthropic->gemini"
    o = openai.OpenAI(base_url=gw.url + "/v1", api_key=GATEWAY_KEY, max_retries=0, timeout=20)
    ro = o.chat.completions.with_raw_response.create(model="fast", messages=[{"role": "user", "content": "hi"}])
    assert ro.headers["x-agentdeck-translated"] == "openai->gemini"
    client = genai_client(gw)
    rg = client.models.generate_content(model="fast", contents="hi")
    assert "model=gemini-2.5-flash" in rg.text
    assert rg.sdk_http_response.headers["x-agentdeck-tier"] == "fast"
    assert "x-agentdeck-translated" not in rg.sdk_http_response.headers
    rows = wait_rows(gw, 3)
    assert {(r["model"], r["provider"], r["tier"]) for r in rows} == {("gemini-2.5-flash", "google", "fast")}


def test_a_gemini_caller_without_a_gemini_tier_model_gets_a_404_naming_the_key(make_gateway: Any,
                                                                                mock: MockServer) -> None:
    """With same_vendor = true (without it, the tier's cheapest model of another vendor answers)."""
    cfg = translate_config(mock.url)
    cfg["routing"]["same_vendor"] = True
    gw = make_gateway(**cfg)
    r = httpx.post(gw.url + "/v1beta/models/auto:generateContent", headers={"x-goog-api-key": GATEWAY_KEY},
                   json={"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}, timeout=10)
    assert r.status_code == 404 and r.json()["error"]["status"] == "NOT_FOUND"
    assert "routing.tiers." in r.json()["error"]["message"] and ".gemini" in r.json()["error"]["message"]
