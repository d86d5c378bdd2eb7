"""The gateway against the mock in the shapes real providers send (CRLF framing, spaced JSON,
pings, thinking and tool_use blocks, cache and reasoning tokens, an error event mid-stream),
with the official SDKs as callers: the SDK parses every stream, and every call is priced from
the provider's own usage."""

from __future__ import annotations

from typing import Any

import anthropic
import httpx
import openai
import pytest

from deck_support import ADMIN_TOKEN, GATEWAY_KEY

SHAPES = [
    {},
    {"crlf": True},
    {"crlf": True, "spaced_json": True, "pings": True},
    {"spaced_json": True, "thinking": True, "tool_use": True, "cached_tokens": 40, "cache_write_tokens": 12,
     "reasoning_tokens": 9},
]


def _last_row(gw: Any) -> dict[str, Any]:
    r = httpx.get(gw.url + "/admin/requests?limit=1", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    return r.json()["requests"][0]


@pytest.mark.parametrize("shape", SHAPES, ids=["lf", "crlf", "crlf-spaced-pings", "thinking-tools-cache"])
def test_streams_in_every_shape_parse_in_the_sdks_and_are_priced(make_gateway: Any, mock: Any, shape: dict[str, Any]) -> None:
    mock.update(**shape)
    gw = make_gateway()
    a = anthropic.Anthropic(base_url=gw.url, api_key=GATEWAY_KEY, max_retries=0)
    with a.messages.stream(model="claude-haiku-4-5", max_tokens=64, messages=[{"role": "user", "content": "hi"}]) as s:
        final = s.get_final_message()
    assert final.usage.output_tokens > 0
    row = _last_row(gw)
    assert row["status"] == 200 and row["cost_usd"] > 0 and row["output_tokens"] == final.usage.output_tokens
    assert row["input_tokens"] == final.usage.input_tokens
    o = openai.OpenAI(base_url=gw.url + "/v1", api_key=GATEWAY_KEY, max_retries=0)
    chunks = list(o.chat.completions.create(model="gpt-4o-mini", stream=True, stream_options={"include_usage": True},
                                            messages=[{"role": "user", "content": "hi"}]))
    usage = [c.usage for c in chunks if c.usage is not None]
    assert usage and _last_row(gw)["output_tokens"] == usage[-1].completion_tokens
    with o.responses.stream(model="gpt-4o", input="hi") as rs:
        done = rs.get_final_response()
    assert done.usage is not None and _last_row(gw)["output_tokens"] == done.usage.output_tokens


@pytest.mark.parametrize("crlf", [False, True])
def test_a_provider_error_mid_stream_reaches_the_sdk_and_the_call_is_recorded_failed(
        make_gateway: Any, mock: Any, crlf: bool) -> None:
    mock.update(stream_error=True, crlf=crlf)
    gw = make_gateway()
    a = anthropic.Anthropic(base_url=gw.url, api_key=GATEWAY_KEY, max_retries=0)
    with pytest.raises(anthropic.APIStatusError):
        with a.messages.stream(model="claude-haiku-4-5", max_tokens=64, messages=[{"role": "user", "content": "hi"}]) as s:
            s.get_final_message()
    row = _last_row(gw)
    assert row["status"] >= 400 and row["cost_usd"] > 0
    o = openai.OpenAI(base_url=gw.url + "/v1", api_key=GATEWAY_KEY, max_retries=0)
    with pytest.raises(openai.APIError):
        list(o.chat.completions.create(model="gpt-4o-mini", stream=True, messages=[{"role": "user", "content": "hi"}]))
    assert _last_row(gw)["status"] >= 400
