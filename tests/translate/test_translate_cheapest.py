"""`auto` takes the tier, then the tier's cheapest configured model of any vendor (unless same_vendor)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from agentdeck.config import Config, parse_config
from agentdeck.pricing import PriceTable
from agentdeck.routing import Router
from agentdeck.routing.choice import blended
from agentdeck.sim import MockServer
from deck_support import GATEWAY_KEY
from translate_support import run_client, translate_config, wait_rows

GREP = "grep for TODOs in the payments module"                     # fast
FEATURE = "Implement pagination for the /projects endpoint"        # balanced
KEYS = {"ANTHROPIC_API_KEY": "sk-ant-test-aaaaaaaa", "OPENAI_API_KEY": "sk-test-bbbbbbbb"}


def _config(environ: dict[str, str] | None = None, **routing: Any) -> Config:
    data: dict[str, Any] = {"routing": routing} if routing else {}
    return parse_config(data, "<test>", environ=KEYS if environ is None else environ)


def test_auto_takes_the_cheapest_model_of_the_tier_across_vendors() -> None:
    cfg = _config()
    router = Router(cfg)
    prices = PriceTable(cfg)
    # gpt-4o-mini is cheaper than claude-haiku-4-5 at 3 prompt tokens to 1 written one
    assert blended(prices.get("gpt-4o-mini", "openai")) < blended(prices.get("claude-haiku-4-5", "anthropic"))
    r = router.resolve("auto", "anthropic", GREP, 40, 0.0)
    assert (r.tier, r.model) == ("fast", "gpt-4o-mini")
    assert "gpt-4o-mini is the fast tier's cheapest configured model" in r.reason and "claude-haiku-4-5 ($2.00)" in r.reason
    choice = router.choices[("fast", "anthropic")]
    assert choice.provider == "openai" and [m for m, _ in choice.others] == ["claude-haiku-4-5"]
    # a named tier is the caller's own column of the table (the contract's "fast = that tier")
    assert router.resolve("fast", "anthropic", GREP, 40, 0.0).model == "claude-haiku-4-5"
    # a Gemini caller, whose tiers name no gemini model, gets the cheapest of the others
    assert router.resolve("auto", "gemini", GREP, 40, 0.0).model == "gpt-4o-mini"
    assert router.resolve("balanced", "gemini", FEATURE, 40, 0.0).model == "gpt-4o"


def test_same_vendor_or_translation_off_keeps_a_caller_on_its_own_models() -> None:
    for routing in ({"same_vendor": True}, {"translate": False}):
        router = Router(_config(**routing))
        assert router.resolve("auto", "anthropic", GREP, 40, 0.0).model == "claude-haiku-4-5"
        assert router.resolve("auto", "openai", FEATURE, 40, 0.0).model == "gpt-4o"
        assert router.choices == {}


def test_a_provider_without_its_key_is_not_a_candidate() -> None:
    only_anthropic = Router(_config({"ANTHROPIC_API_KEY": "sk-ant-test-aaaaaaaa"}))
    assert only_anthropic.resolve("auto", "anthropic", GREP, 40, 0.0).model == "claude-haiku-4-5"
    # and an OpenAI caller whose provider has no key is served by the vendor that has one
    assert only_anthropic.resolve("auto", "openai", GREP, 40, 0.0).model == "claude-haiku-4-5"
    nobody = Router(_config({}))
    assert nobody.resolve("auto", "anthropic", GREP, 40, 0.0).model == "claude-haiku-4-5", "as before: own model"


def test_configured_prices_decide_and_a_tie_keeps_the_callers_own_model() -> None:
    flash_cheap = parse_config({"prices": {"gemini-2.5-flash": {"input": 0.01, "output": 0.01}},
                                "providers": {"google": {"protocol": "gemini", "base_url": "http://127.0.0.1:9",
                                                         "models": ["gemini-*"]},
                                              "openai": {"protocol": "openai", "base_url": "http://127.0.0.1:9",
                                                         "models": ["gpt-*"]}},
                                "routing": {"tiers": {"fast": {"openai": "gpt-4o-mini", "gemini": "gemini-2.5-flash"}}}},
                               "<test>", environ={})
    router = Router(flash_cheap)
    assert router.resolve("auto", "openai", GREP, 40, 0.0).model == "gemini-2.5-flash"
    assert router.choices[("fast", "openai")].provider == "google"
    tie = parse_config({"prices": {"gpt-4o-mini": {"input": 1.0, "output": 2.0},
                                   "claude-haiku-4-5": {"input": 1.0, "output": 2.0}}}, "<test>", environ=KEYS)
    router = Router(tie)
    assert router.resolve("auto", "anthropic", GREP, 40, 0.0).model == "claude-haiku-4-5"
    assert router.resolve("auto", "openai", GREP, 40, 0.0).model == "gpt-4o-mini"


def test_sdk_callers_auto_runs_the_cheapest_model_translated_and_priced(make_gateway: Any, mock: MockServer) -> None:
    gw = make_gateway(**translate_config(mock.url))
    a = anthropic.Anthropic(base_url=gw.url, api_key=GATEWAY_KEY, max_retries=0, timeout=20)
    raw = a.messages.with_raw_response.create(model="auto", max_tokens=100, messages=[{"role": "user", "content": GREP}])
    msg = raw.parse()
    assert raw.headers["x-agentdeck-model"] == "gpt-4o-mini" and raw.headers["x-agentdeck-tier"] == "fast"
    assert raw.headers["x-agentdeck-translated"] == "anthropic->openai"
    assert msg.type == "message" and "model=gpt-4o-mini" in msg.content[0].text
    with a.messages.stream(model="auto", max_tokens=100, messages=[{"role": "user", "content": FEATURE}]) as s:
        final = s.get_final_message()
        assert s.response.headers["x-agentdeck-model"] == "gpt-4o"
    assert "model=gpt-4o" in final.content[0].text
    r = httpx.post(gw.url + "/v1beta/models/auto:generateContent", headers={"x-goog-api-key": GATEWAY_KEY},
                   json={"contents": [{"role": "user", "parts": [{"text": GREP}]}]}, timeout=10)
    assert r.status_code == 200 and r.headers["x-agentdeck-translated"] == "gemini->openai"
    assert "model=gpt-4o-mini" in r.json()["candidates"][0]["content"]["parts"][0]["text"]
    rows = wait_rows(gw, 3)
    prices = PriceTable(gw.cfg)
    for row in rows:
        assert row["provider"] == "openai" and row["model_requested"] == "auto" and row["status"] == 200
        p = prices.get(row["model"], "openai")
        assert row["cost_usd"] == pytest.approx((row["input_tokens"] * p.input + row["output_tokens"] * p.output) / 1e6)
    assert {(r["model"], r["tier"]) for r in rows} == {("gpt-4o-mini", "fast"), ("gpt-4o", "balanced")}


def test_same_vendor_true_keeps_claude_code_on_claude(make_gateway: Any, mock: MockServer) -> None:
    cfg = translate_config(mock.url)
    cfg["routing"]["same_vendor"] = True
    gw = make_gateway(**cfg)
    a = anthropic.Anthropic(base_url=gw.url, api_key=GATEWAY_KEY, max_retries=0, timeout=20)
    raw = a.messages.with_raw_response.create(model="auto", max_tokens=100, messages=[{"role": "user", "content": GREP}])
    assert raw.headers["x-agentdeck-model"] == "claude-haiku-4-5" and "x-agentdeck-translated" not in raw.headers


def test_an_escalation_goes_to_the_next_tiers_cheapest_model(make_gateway: Any, mock: MockServer) -> None:
    gw = make_gateway(**translate_config(mock.url))
    a = anthropic.Anthropic(base_url=gw.url, api_key=GATEWAY_KEY, max_retries=0, timeout=20)
    raw = a.messages.with_raw_response.create(model="auto", max_tokens=50,
                                              messages=[{"role": "user", "content": "list the files [mock:truncate]"}])
    assert raw.headers["x-agentdeck-tier"] == "balanced" and raw.headers["x-agentdeck-model"] == "gpt-4o"
    assert raw.headers["x-agentdeck-translated"] == "anthropic->openai"
    [row] = wait_rows(gw, 1)
    assert row["escalations"] == ["fast->balanced: truncated"] and row["provider"] == "openai"
    o = openai.OpenAI(base_url=gw.url + "/v1", api_key=GATEWAY_KEY, max_retries=0, timeout=20)
    r = o.chat.completions.with_raw_response.create(model="auto", messages=[{"role": "user", "content": GREP}])
    assert r.headers["x-agentdeck-model"] == "gpt-4o-mini" and "x-agentdeck-translated" not in r.headers


def test_claude_code_at_its_defaults_with_auto_runs_the_cheapest_vendor(make_gateway: Any, mock: MockServer,
                                                                        tmp_path: Path) -> None:
    """The default tiers, both vendors keyed: Claude Code's auto calls (a tool call, then the answer) run on OpenAI."""
    gw = make_gateway(**translate_config(mock.url))
    p = run_client(gw, tmp_path, "claude", "-p", "look it up [mock:tool]", "--model", "auto")
    assert p.returncode == 0, p.stderr[-3000:]
    rows = [r for r in wait_rows(gw, 2) if r["model_requested"] == "auto"]
    assert len(rows) >= 2, rows
    assert all(r["provider"] == "openai" and r["model"].startswith("gpt-") and r["status"] == 200 and r["cost_usd"] > 0
               for r in rows), rows
    assert "model=gpt-" in p.stdout
