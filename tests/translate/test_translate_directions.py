"""Every caller protocol against every provider protocol of another vendor, through the official SDKs.

The mock answers in the provider's protocol; the caller's SDK must read the answer, the tool
call, the usage and the errors in its own protocol, and the gateway must price the call from
what the provider said.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from agentdeck.pricing import PriceTable, Usage
from agentdeck.sim import MockServer
from translate_support import CALLERS, MODEL_OF, PROTOCOL_OF, PROVIDER_OF, PROVIDERS, translate_config, wait_rows

DIRECTIONS = [(c, p) for c in CALLERS for p in PROVIDERS if PROTOCOL_OF[c] != p]
IDS = [f"{c}->{p}" for c, p in DIRECTIONS]


@pytest.fixture
def gw(make_gateway: Any, mock: MockServer) -> Any:
    return make_gateway(**translate_config(mock.url))


def _priced(gw: Any, row: dict[str, Any]) -> float:
    return PriceTable(gw.gateway.cfg).cost(row["model"], Usage(input_tokens=row["input_tokens"],
                                                               output_tokens=row["output_tokens"]), row["provider"])


@pytest.mark.parametrize("stream", [False, True], ids=["unary", "stream"])
@pytest.mark.parametrize(("caller", "provider"), DIRECTIONS, ids=IDS)
def test_text_answer_usage_and_cost(gw: Any, mock: MockServer, caller: str, provider: str, stream: bool) -> None:
    c = CALLERS[caller](gw)
    model = MODEL_OF[provider]
    r = c.ask(model, [c.user("say hello")], stream)
    assert f"model={model}" in r.text
    assert r.headers["x-agentdeck-translated"] == f"{PROTOCOL_OF[caller]}->{provider}"
    assert r.headers["x-agentdeck-model"] == model
    assert r.stop == c.stop_end
    [row] = wait_rows(gw, 1)
    assert row["provider"] == PROVIDER_OF[provider] and row["status"] == 200 and row["estimated"] is False
    assert (row["input_tokens"], row["output_tokens"]) == r.usage
    assert row["cost_usd"] > 0 and row["cost_usd"] == pytest.approx(_priced(gw, row))
    sent = orjson.loads(mock.state.last_body)
    if provider == "gemini":
        assert sent["systemInstruction"]["parts"][0]["text"] == "You are terse."
    elif provider == "anthropic":
        assert sent["system"] == "You are terse." and sent["max_tokens"] == 200
    else:
        assert sent["messages"][0] == {"role": "system", "content": "You are terse."}


@pytest.mark.parametrize("stream", [False, True], ids=["unary", "stream"])
@pytest.mark.parametrize(("caller", "provider"), DIRECTIONS, ids=IDS)
def test_tool_call_round_trip(gw: Any, mock: MockServer, caller: str, provider: str, stream: bool) -> None:
    c = CALLERS[caller](gw)
    model = MODEL_OF[provider]
    history = [c.user("find the weather [mock:tool]")]
    first = c.ask(model, history, stream, tools=True)
    assert first.tool is not None, "the provider's tool call must reach the caller as its own tool call"
    _, name, args = first.tool
    assert name == "lookup" and isinstance(args.get("query"), str) and args["query"]
    assert first.stop == c.stop_tool
    sent = orjson.loads(mock.state.last_body)
    declared = (sent["tools"][0]["functionDeclarations"][0]["name"] if provider == "gemini" else
                sent["tools"][0]["name"] if provider == "anthropic" else sent["tools"][0]["function"]["name"])
    assert declared == "lookup"
    second = c.ask(model, c.after_tool(history, first, "sunny, 21C"), stream, tools=True)
    assert second.tool is None and f"model={model}" in second.text
    sent = orjson.loads(mock.state.last_body)
    body = orjson.dumps(sent).decode()
    assert "sunny, 21C" in body, "the tool result must reach the provider"
    if provider == "openai":
        assert sent["messages"][-1]["role"] == "tool" and sent["messages"][-2]["tool_calls"][0]["function"]["name"] == "lookup"
    elif provider == "anthropic":
        assert sent["messages"][-1]["content"][0]["type"] == "tool_result"
        assert sent["messages"][-1]["content"][0]["tool_use_id"] == sent["messages"][-2]["content"][-1]["id"]
    else:
        assert sent["contents"][-1]["parts"][0]["functionResponse"]["name"] == "lookup"


@pytest.mark.parametrize(("caller", "provider"), DIRECTIONS, ids=IDS)
def test_image_input_reaches_the_provider_in_its_shape(gw: Any, mock: MockServer, caller: str, provider: str) -> None:
    c = CALLERS[caller](gw)
    r = c.ask(MODEL_OF[provider], [c.user("what is in this picture?", image=True)], False)
    assert r.text
    sent = orjson.loads(mock.state.last_body)
    if provider == "openai":
        part = sent["messages"][1]["content"][0]
        assert part["type"] == "image_url" and part["image_url"]["url"].startswith("data:image/png;base64,iVBOR")
    elif provider == "anthropic":
        src = sent["messages"][0]["content"][0]["source"]
        assert src["type"] == "base64" and src["media_type"] == "image/png" and src["data"].startswith("iVBOR")
    else:
        blob = sent["contents"][0]["parts"][0]["inlineData"]
        assert blob["mimeType"] == "image/png" and blob["data"].startswith("iVBOR")


@pytest.mark.parametrize("stream", [False, True], ids=["unary", "stream"])
@pytest.mark.parametrize(("caller", "provider"), DIRECTIONS, ids=IDS)
def test_provider_errors_in_the_callers_format(gw: Any, caller: str, provider: str, stream: bool) -> None:
    c = CALLERS[caller](gw)
    rate_limited, bad_request = c.errors()
    with pytest.raises(rate_limited) as e429:
        c.ask(MODEL_OF[provider], [c.user("[mock:error=429]")], stream)
    with pytest.raises(bad_request) as e400:
        c.ask(MODEL_OF[provider], [c.user("[mock:error=400]")], stream)
    if caller == "gemini":
        assert e429.value.code == 429 and e429.value.status == "RESOURCE_EXHAUSTED"
        assert e400.value.code == 400 and e400.value.status == "INVALID_ARGUMENT"
    else:
        assert e429.value.status_code == 429 and e400.value.status_code == 400
        assert e429.value.response.headers.get("retry-after") == "1", "the provider's wait reaches the caller"
        assert e429.value.response.headers["x-agentdeck-translated"] == f"{PROTOCOL_OF[caller]}->{provider}"
    rows = wait_rows(gw, 2)
    assert sorted(r["status"] for r in rows) == [400, 429]


@pytest.mark.parametrize(("caller", "provider"), DIRECTIONS, ids=IDS)
def test_sampling_limits_and_structured_output_reach_the_provider(gw: Any, mock: MockServer, caller: str,
                                                                  provider: str) -> None:
    c = CALLERS[caller](gw)
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
    extra: dict[str, Any] = {
        "anthropic": {"temperature": 0.25, "top_p": 0.5, "stop_sequences": ["END"]},
        "openai": {"temperature": 0.25, "top_p": 0.5, "stop": ["END"],
                   "response_format": {"type": "json_schema", "json_schema": {"name": "a", "schema": schema}}},
        "responses": {"temperature": 0.25, "top_p": 0.5, "text": {"format": {"type": "json_schema", "name": "a",
                                                                               "schema": schema}}},
        "gemini": {"generationConfig": {"temperature": 0.25, "topP": 0.5, "stopSequences": ["END"], "maxOutputTokens": 77,
                                        "responseMimeType": "application/json", "responseJsonSchema": schema}},
    }[caller]
    c.ask_raw(MODEL_OF[provider], "answer in JSON", extra)
    sent = orjson.loads(mock.state.last_body)
    if provider == "gemini":
        gc = sent["generationConfig"]
        assert (gc["temperature"], gc["topP"]) == (0.25, 0.5)
        if caller != "anthropic":
            assert gc["responseMimeType"] == "application/json" and gc["responseJsonSchema"] == schema
    elif provider == "anthropic":
        assert (sent["temperature"], sent["top_p"]) == (0.25, 0.5) and sent["max_tokens"] > 0
    else:
        assert (sent["temperature"], sent["top_p"]) == (0.25, 0.5)
        if caller != "anthropic":  # Anthropic has no structured output to pass on
            assert sent["response_format"]["json_schema"]["schema"] == schema
    if caller in ("anthropic", "openai", "gemini"):
        stops = sent.get("stop") or sent.get("stop_sequences") or sent.get("generationConfig", {}).get("stopSequences")
        assert stops == ["END"]
    if caller == "gemini" and provider != "gemini":
        assert sent.get("max_tokens", sent.get("max_completion_tokens")) == 77
