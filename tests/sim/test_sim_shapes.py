"""The mock's switches for the shapes real providers send, each read back by the official SDKs
and, byte for byte, by the gateway's own SSE decoder."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from typing import Any

import anthropic
import httpx
import openai
import pytest

from agentdeck.sim import MockServer, run_mock_process, wait_for_mock
from agentdeck.sim.mock import estimate_tokens
from agentdeck.wire.sse import SSEDecoder, SSEEvent

CHAT = [{"role": "user", "content": "Name three colours, please."}]
CHAT_TOKENS = estimate_tokens({"messages": CHAT})
OA_HEADERS = {"authorization": "Bearer sk-test", "content-type": "application/json"}
AN_HEADERS = {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01", "content-type": "application/json"}


def oa(mock: MockServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=mock.url + "/v1", api_key="sk-test", max_retries=0)


def an(mock: MockServer) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=mock.url, api_key="sk-ant-test", max_retries=0)


def raw_stream(mock: MockServer, path: str, body: dict[str, Any]) -> bytes:
    headers = AN_HEADERS if path == "/v1/messages" else OA_HEADERS
    r = httpx.post(mock.url + path, json={**body, "stream": True}, headers=headers, timeout=10)
    assert r.status_code == 200, r.text
    return r.content


def events(stream: bytes) -> list[SSEEvent]:
    decoder = SSEDecoder()
    out = decoder.feed(stream) + decoder.flush()
    assert b"".join(e.raw for e in out) == stream
    return out


def chat_body(**kw: Any) -> dict[str, Any]:
    return {"model": "gpt-4o", "messages": CHAT, "stream_options": {"include_usage": True}, **kw}


def messages_body(**kw: Any) -> dict[str, Any]:
    return {"model": "claude-sonnet-4-5", "max_tokens": 200, "messages": CHAT, **kw}


def sdk_chat_text(mock: MockServer) -> str:
    stream = oa(mock).chat.completions.create(model="gpt-4o", messages=CHAT, stream=True)  # type: ignore[arg-type]
    return "".join(c.choices[0].delta.content or "" for c in stream if c.choices)


def sdk_messages_text(mock: MockServer) -> str:
    with an(mock).messages.stream(model="claude-sonnet-4-5", max_tokens=200, messages=CHAT) as s:  # type: ignore[arg-type]
        return s.get_final_text()


def test_crlf_framing_every_line_and_the_sdks_still_read_it(mock: MockServer) -> None:
    plain_chat, plain_messages = sdk_chat_text(mock), sdk_messages_text(mock)
    mock.update(crlf=True)
    for path, body in (("/v1/chat/completions", chat_body()), ("/v1/messages", messages_body()),
                       ("/v1/responses", {"model": "gpt-4o", "input": "hi"})):
        stream = raw_stream(mock, path, body)
        assert stream.count(b"\n") == stream.count(b"\r\n") > 0, path
        assert all(e.data is not None for e in events(stream))
    assert sdk_chat_text(mock) == plain_chat
    assert sdk_messages_text(mock) == plain_messages


def test_spaced_json_in_streams_and_answers(mock: MockServer) -> None:
    compact = [e.data for e in events(raw_stream(mock, "/v1/chat/completions", chat_body()))]
    assert compact[1] is not None and b'": ' not in compact[1]
    mock.update(spaced_json=True)
    spaced = events(raw_stream(mock, "/v1/chat/completions", chat_body()))
    assert spaced[1].data is not None and b'"object": "chat.completion.chunk", ' in spaced[1].data
    assert spaced[-1].data == b"[DONE]"
    anthropic_events = events(raw_stream(mock, "/v1/messages", messages_body()))
    assert all(b'", "' in (e.data or b"") or b'": ' in (e.data or b"") for e in anthropic_events)
    r = httpx.post(mock.url + "/v1/chat/completions", json=chat_body(), headers=OA_HEADERS)
    assert b'"object": "chat.completion"' in r.content and r.json()["usage"]["prompt_tokens"] == CHAT_TOKENS
    assert sdk_messages_text(mock).startswith("model=claude-sonnet-4-5 ")


def test_pings_comments_and_anthropic_ping_events(mock: MockServer) -> None:
    mock.update(pings=True, output_tokens=12)
    chat = events(raw_stream(mock, "/v1/chat/completions", chat_body()))
    assert chat[0].raw == b": ping\n\n" and chat[0].data is None
    assert sum(e.data is None for e in chat) >= 3  # the opening one and one per five tokens
    messages = events(raw_stream(mock, "/v1/messages", messages_body()))
    assert messages[0].data is None
    assert [e.event for e in messages].count("ping") >= 3
    text = sdk_chat_text(mock)
    assert text.startswith("model=gpt-4o ") and len(text.split()) == 12
    assert len(sdk_messages_text(mock).split()) == 12


def test_anthropic_thinking_block_with_signature(mock: MockServer) -> None:
    mock.update(thinking=True, output_tokens=10)
    evs = events(raw_stream(mock, "/v1/messages", messages_body()))
    deltas = [json.loads(e.data or b"")["delta"]["type"] for e in evs if e.event == "content_block_delta"]
    assert deltas[0] == "thinking_delta" and "signature_delta" in deltas
    assert deltas.index("signature_delta") < deltas.index("text_delta")
    with an(mock).messages.stream(model="claude-sonnet-4-5", max_tokens=200, messages=CHAT) as s:  # type: ignore[arg-type]
        final = s.get_final_message()
    assert [b.type for b in final.content] == ["thinking", "text"]
    thinking = final.content[0]
    assert thinking.type == "thinking" and thinking.thinking.startswith("Let me think.") and thinking.signature
    assert final.usage.output_tokens == 10 + 8  # visible tokens + the thinking tokens
    m = an(mock).messages.create(model="claude-sonnet-4-5", max_tokens=200, messages=CHAT)  # type: ignore[arg-type]
    assert [b.type for b in m.content] == ["thinking", "text"] and m.stop_reason == "end_turn"


def test_anthropic_tool_use_block_with_input_json_delta(mock: MockServer) -> None:
    mock.update(tool_use=True)
    evs = events(raw_stream(mock, "/v1/messages", messages_body()))
    partial = [json.loads(e.data or b"")["delta"] for e in evs if e.event == "content_block_delta"]
    assert sum(d["type"] == "input_json_delta" for d in partial) >= 2
    with an(mock).messages.stream(model="claude-sonnet-4-5", max_tokens=200, messages=CHAT) as s:  # type: ignore[arg-type]
        final = s.get_final_message()
    assert [b.type for b in final.content] == ["text", "tool_use"] and final.stop_reason == "tool_use"
    tool = final.content[1]
    assert tool.type == "tool_use" and tool.name == "lookup" and tool.id.startswith("toolu_")
    assert tool.input == {"query": " ".join(final.content[0].text.split()[:6])}  # type: ignore[union-attr]
    m = an(mock).messages.create(model="claude-sonnet-4-5", max_tokens=200, messages=CHAT)  # type: ignore[arg-type]
    assert m.content[1].type == "tool_use" and m.content[1].input == tool.input and m.stop_reason == "tool_use"


def test_cache_tokens_on_both_protocols(mock: MockServer) -> None:
    mock.update(cached_tokens=1000, cache_write_tokens=300)
    r = oa(mock).chat.completions.create(model="gpt-4o", messages=CHAT)  # type: ignore[arg-type]
    assert r.usage is not None and r.usage.prompt_tokens == CHAT_TOKENS + 1300
    assert r.usage.prompt_tokens_details is not None and r.usage.prompt_tokens_details.cached_tokens == 1000
    stream = oa(mock).chat.completions.create(model="gpt-4o", messages=CHAT, stream=True,  # type: ignore[arg-type]
                                              stream_options={"include_usage": True})
    usage = [c.usage for c in stream if c.usage is not None][-1]
    assert usage.prompt_tokens_details is not None and usage.prompt_tokens_details.cached_tokens == 1000
    m = an(mock).messages.create(model="claude-sonnet-4-5", max_tokens=50, messages=CHAT)  # type: ignore[arg-type]
    u = m.usage
    assert (u.input_tokens, u.cache_read_input_tokens, u.cache_creation_input_tokens) == (CHAT_TOKENS, 1000, 300)
    with an(mock).messages.stream(model="claude-sonnet-4-5", max_tokens=50, messages=CHAT) as s:  # type: ignore[arg-type]
        su = s.get_final_message().usage
    assert (su.input_tokens, su.cache_read_input_tokens, su.cache_creation_input_tokens) == (CHAT_TOKENS, 1000, 300)


def test_reasoning_tokens_and_the_responses_reasoning_item(mock: MockServer) -> None:
    mock.update(reasoning_tokens=7, output_tokens=5)
    r = oa(mock).chat.completions.create(model="gpt-5", messages=CHAT)  # type: ignore[arg-type]
    assert r.usage is not None and r.usage.completion_tokens == 12
    assert r.usage.completion_tokens_details is not None and r.usage.completion_tokens_details.reasoning_tokens == 7
    resp = oa(mock).responses.create(model="gpt-5", input="hi")
    assert [o.type for o in resp.output] == ["reasoning", "message"]
    assert resp.usage is not None and resp.usage.output_tokens_details.reasoning_tokens == 7
    assert resp.output_text.startswith("model=gpt-5 ")
    with oa(mock).responses.stream(model="gpt-5", input="hi") as s:
        final = s.get_final_response()
    assert [o.type for o in final.output] == ["reasoning", "message"] and final.output_text == resp.output_text


def test_error_event_mid_stream_on_each_protocol(mock: MockServer) -> None:
    mock.update(stream_error=True, output_tokens=10)
    chat = events(raw_stream(mock, "/v1/chat/completions", chat_body()))
    assert "error" in json.loads(chat[-1].data or b"") and all(e.data != b"[DONE]" for e in chat)
    messages = events(raw_stream(mock, "/v1/messages", messages_body()))
    assert messages[-1].event == "error" and json.loads(messages[-1].data or b"")["error"]["type"] == "overloaded_error"
    assert "message_stop" not in [e.event for e in messages]
    got: list[str] = []
    with pytest.raises(openai.APIError):
        for c in oa(mock).chat.completions.create(model="gpt-4o", messages=CHAT, stream=True):  # type: ignore[arg-type]
            got.append(c.choices[0].delta.content or "" if c.choices else "")
    assert 0 < len("".join(got).split()) < 10  # half the answer arrived before the error
    with pytest.raises(anthropic.APIStatusError):
        with an(mock).messages.stream(model="claude-sonnet-4-5", max_tokens=200, messages=CHAT) as s:  # type: ignore[arg-type]
            s.get_final_message()


def test_dated_model_ids_are_echoed(mock: MockServer) -> None:
    mock.update(dated_models=True)
    r = oa(mock).chat.completions.create(model="gpt-4o", messages=CHAT)  # type: ignore[arg-type]
    assert r.model == "gpt-4o-2025-08-07" and (r.choices[0].message.content or "").startswith("model=gpt-4o ")
    chunks = list(oa(mock).chat.completions.create(model="gpt-4.1-mini-2025-04-14", messages=CHAT, stream=True))  # type: ignore[arg-type]
    assert {c.model for c in chunks} == {"gpt-4.1-mini-2025-04-14"}  # already dated: unchanged
    m = an(mock).messages.create(model="claude-sonnet-4-5", max_tokens=50, messages=CHAT)  # type: ignore[arg-type]
    assert m.model == "claude-sonnet-4-5-20250929"
    with an(mock).messages.stream(model="claude-sonnet-4-5", max_tokens=50, messages=CHAT) as s:  # type: ignore[arg-type]
        assert s.get_final_message().model == "claude-sonnet-4-5-20250929"
    assert "claude-haiku-4-5-20250929" in [x.id for x in an(mock).models.list()]


def test_any_model_name_by_default_and_a_glob_list_when_asked(mock: MockServer) -> None:
    for model in ("claude-opus-5-5", "gpt-6.1-sol", "some-local-model"):
        r = oa(mock).chat.completions.create(model=model, messages=CHAT)  # type: ignore[arg-type]
        assert r.model == model
    mock.update(models=["claude-*", "gpt-4o"])
    assert oa(mock).chat.completions.create(model="gpt-4o", messages=CHAT).model == "gpt-4o"  # type: ignore[arg-type]
    with pytest.raises(openai.NotFoundError, match="gpt-6.1-sol"):
        oa(mock).chat.completions.create(model="gpt-6.1-sol", messages=CHAT)  # type: ignore[arg-type]
    with pytest.raises(anthropic.NotFoundError):
        an(mock).messages.create(model="gpt-4o-mini", max_tokens=5, messages=CHAT)  # type: ignore[arg-type]
    assert an(mock).messages.create(model="claude-opus-5-5", max_tokens=5, messages=CHAT).model == "claude-opus-5-5"  # type: ignore[arg-type]


def test_bad_switch_values_are_refused_by_name(mock: MockServer) -> None:
    for bad in ({"crlf": "yes"}, {"cached_tokens": -1}, {"models": []}, {"models": "claude-*"}):
        r = httpx.post(mock.url + "/_mock/settings", json=bad)
        assert r.status_code == 400 and next(iter(bad)) in r.json()["error"]
    assert httpx.get(mock.url + "/_mock/settings").json()["crlf"] is False


def test_cli_switches_reach_the_child_process() -> None:
    proc = run_mock_process(0, crlf=True, pings=True, dated_models=True, models=["gpt-*"], reasoning_tokens=3)
    try:
        url = wait_for_mock(proc)
        settings = httpx.get(url + "/_mock/settings").json()
        assert (settings["crlf"], settings["pings"], settings["models"], settings["reasoning_tokens"]) == (True, True, ["gpt-*"], 3)
        r = httpx.post(url + "/v1/chat/completions", json=chat_body(stream=True), headers=OA_HEADERS)
        assert r.content.startswith(b": ping\r\n\r\n") and b'"model":"gpt-4o-2025-08-07"' in r.content
        assert httpx.post(url + "/v1/chat/completions", json={**chat_body(), "model": "gpt-5"}, headers=OA_HEADERS).status_code == 200
        assert httpx.post(url + "/v1/chat/completions", json={**chat_body(), "model": "o3"}, headers=OA_HEADERS).status_code == 404
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)


def test_cli_rejects_bad_switch_values() -> None:
    for argv, needle in ((["--models", " , "], "--models"), (["--cached-tokens", "-5"], "--cached-tokens")):
        out = subprocess.run([sys.executable, "-m", "agentdeck", "mock-upstream", "--port", "0", *argv],
                             capture_output=True, text=True, timeout=30)
        assert out.returncode != 0 and needle in out.stderr and "Traceback" not in out.stderr
