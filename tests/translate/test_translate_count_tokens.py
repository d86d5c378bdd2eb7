"""Anthropic's count_tokens (Claude Code calls it) for a model only a provider of another protocol serves.

Gemini has a count endpoint: the call is translated to `:countTokens` and the count is Gemini's.
OpenAI chat has none: the gateway answers with its own estimate and calls no provider.
"""

from __future__ import annotations

from typing import Any

import anthropic
import orjson
import pytest

from agentdeck.sim import MockServer
from agentdeck.sim.mock.gemini import estimate_tokens
from agentdeck.wire.estimate import estimate_input_tokens
from deck_support import GATEWAY_KEY
from translate_support import PNG_1PX, TOOL, translate_config

SYSTEM = "You are terse."
TOOLS = [{"name": TOOL["name"], "description": TOOL["description"], "input_schema": TOOL["schema"]}]


class _Sent:
    """The bodies the SDK put on the wire (an httpx request hook), to compute the gateway's estimate."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    def __call__(self, request: Any) -> None:
        self.bodies.append(request.read())


def _client(gw: Any, sent: _Sent | None = None) -> anthropic.Anthropic:
    hooks = {"request": [sent]} if sent is not None else {}
    return anthropic.Anthropic(base_url=gw.url, api_key=GATEWAY_KEY, max_retries=0, timeout=20,
                               http_client=anthropic.DefaultHttpxClient(event_hooks=hooks))


def _messages(text: str, image: bool = False) -> list[dict[str, Any]]:
    content: list[dict[str, Any]] = [{"type": "text", "text": text}]
    if image:
        content.insert(0, {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG_1PX}})
    return [{"role": "user", "content": content}]


def test_count_tokens_for_a_gemini_model_is_geminis_own_count(make_gateway: Any, mock: MockServer) -> None:
    gw = make_gateway(**translate_config(mock.url))
    raw = _client(gw).messages.with_raw_response.count_tokens(
        model="gemini-2.5-flash", system=SYSTEM, tools=TOOLS,  # type: ignore[arg-type]
        messages=_messages("how many tokens is this sentence? " * 20, image=True))  # type: ignore[arg-type]
    counted = raw.parse()
    assert raw.headers["x-agentdeck-translated"] == "anthropic->gemini"
    assert raw.headers["x-agentdeck-model"] == "gemini-2.5-flash"
    assert mock.stats()["by_path"] == {"/v1beta/models/gemini-2.5-flash:countTokens": 1}
    sent = orjson.loads(mock.state.last_body)
    inner = sent["generateContentRequest"]
    assert inner["model"] == "models/gemini-2.5-flash"
    assert inner["systemInstruction"] == {"parts": [{"text": SYSTEM}]}
    assert inner["tools"][0]["functionDeclarations"][0]["name"] == TOOL["name"]
    assert inner["contents"][0]["parts"][0]["inlineData"] == {"mimeType": "image/png", "data": PNG_1PX}
    assert "generationConfig" not in inner
    assert counted.input_tokens == estimate_tokens(inner) > 100  # exactly what the provider answered


def test_count_tokens_for_an_openai_model_is_the_gateways_estimate(make_gateway: Any, mock: MockServer) -> None:
    gw = make_gateway(**translate_config(mock.url))
    sent = _Sent()
    client = _client(gw, sent)
    short = client.messages.count_tokens(model="gpt-4o-mini", messages=_messages("hi"))  # type: ignore[arg-type]
    raw = client.messages.with_raw_response.count_tokens(
        model="gpt-4o-mini", system=SYSTEM, tools=TOOLS,  # type: ignore[arg-type]
        messages=_messages("a longer prompt to count " * 50, image=True))  # type: ignore[arg-type]
    long = raw.parse()
    assert raw.headers["x-agentdeck-translated"] == "anthropic->openai"
    expected = [estimate_input_tokens(b, orjson.loads(b)) for b in sent.bodies]
    assert [short.input_tokens, long.input_tokens] == expected
    assert long.input_tokens > short.input_tokens + 300
    assert mock.stats()["requests"] == 0, "no provider is asked: OpenAI has no count endpoint"


def test_count_tokens_provider_error_comes_back_in_anthropics_shape(make_gateway: Any, mock: MockServer) -> None:
    mock.update(models=["claude-*", "gpt-*"])  # the Gemini provider's pattern routes it; the provider says 404
    gw = make_gateway(**translate_config(mock.url))
    with pytest.raises(anthropic.NotFoundError) as e:
        _client(gw).messages.count_tokens(model="gemini-2.5-flash", messages=_messages("hi"))  # type: ignore[arg-type]
    assert e.value.response.headers["x-agentdeck-translated"] == "anthropic->gemini"
    body = e.value.response.json()
    assert body["type"] == "error" and body["error"]["type"] == "not_found_error"
    assert "countTokens" in body["error"]["message"]


def test_count_tokens_for_another_vendor_stays_404_with_translation_off(make_gateway: Any, mock: MockServer) -> None:
    cfg = translate_config(mock.url)
    cfg["routing"]["translate"] = False
    gw = make_gateway(**cfg)
    with pytest.raises(anthropic.NotFoundError):
        _client(gw).messages.count_tokens(model="gpt-4o-mini", messages=_messages("hi"))  # type: ignore[arg-type]
    assert mock.stats()["requests"] == 0


def test_count_tokens_for_a_claude_model_still_goes_to_anthropic(make_gateway: Any, mock: MockServer) -> None:
    gw = make_gateway(**translate_config(mock.url))
    raw = _client(gw).messages.with_raw_response.count_tokens(
        model="claude-haiku-4-5", messages=_messages("hi " * 40))  # type: ignore[arg-type]
    assert raw.parse().input_tokens > 0
    assert "x-agentdeck-translated" not in raw.headers
    assert mock.stats()["by_path"] == {"/v1/messages/count_tokens": 1}
