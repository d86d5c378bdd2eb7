"""The official anthropic SDK against the mock: messages (plain and streamed), count_tokens, errors."""

from __future__ import annotations

import json
import time
from datetime import datetime

import anthropic
import httpx
import pytest

from agentdeck.sim import MockServer
from agentdeck.sim.mock import estimate_tokens

MSGS = [{"role": "user", "content": "Write a haiku about queues."}]
SYSTEM = "You are a poet."
IN_TOKENS = estimate_tokens({"messages": MSGS, "system": SYSTEM})


def client(mock: MockServer, **kw: object) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=mock.url, api_key="sk-ant-test", max_retries=0, **kw)  # type: ignore[arg-type]


def test_messages_non_stream(mock: MockServer) -> None:
    raw = client(mock).messages.with_raw_response.create(
        model="claude-haiku-4-5", max_tokens=100, system=SYSTEM, messages=MSGS,  # type: ignore[arg-type]
        extra_headers={"anthropic-beta": "prompt-caching-2024-07-31"})
    m = raw.parse()
    assert m.type == "message" and m.role == "assistant" and m.model == "claude-haiku-4-5"
    assert m.content[0].type == "text" and m.content[0].text.startswith("model=claude-haiku-4-5 ")
    assert m.stop_reason == "end_turn"
    u = m.usage
    assert (u.input_tokens, u.output_tokens, u.cache_creation_input_tokens, u.cache_read_input_tokens) == (IN_TOKENS, 24, 0, 0)
    h = raw.headers
    assert h["request-id"].startswith("req_")
    assert h["x-mock-anthropic-beta"] == "prompt-caching-2024-07-31"
    assert h["x-mock-anthropic-version"]  # whatever version the SDK sent, echoed back
    assert int(h["anthropic-ratelimit-requests-limit"]) > 0
    datetime.strptime(h["anthropic-ratelimit-requests-reset"], "%Y-%m-%dT%H:%M:%SZ")
    assert int(h["anthropic-ratelimit-tokens-remaining"]) % 1000 == 0


def test_messages_truncated_and_cache_magic(mock: MockServer) -> None:
    m = client(mock).messages.create(model="claude-sonnet-4-5", max_tokens=6, messages=MSGS)  # type: ignore[arg-type]
    assert m.stop_reason == "max_tokens" and m.usage.output_tokens == 6
    text = "x" * 400 + " [mock:cached=60] [mock:cache-write=20]"
    m = client(mock).messages.create(model="claude-sonnet-4-5", max_tokens=50,
                                     messages=[{"role": "user", "content": [{"type": "text", "text": text}]}])
    total = estimate_tokens({"messages": [{"role": "user", "content": [{"type": "text", "text": text}]}]})
    u = m.usage
    assert (u.cache_read_input_tokens, u.cache_creation_input_tokens) == (60, 20)
    assert u.input_tokens + 60 + 20 == total  # input_tokens excludes the cached parts


def test_messages_stream(mock: MockServer) -> None:
    c = client(mock)
    full = c.messages.create(model="claude-opus-4-5", max_tokens=100, system=SYSTEM, messages=MSGS)  # type: ignore[arg-type]
    kinds: list[str] = []
    with c.messages.stream(model="claude-opus-4-5", max_tokens=100, system=SYSTEM, messages=MSGS) as stream:  # type: ignore[arg-type]
        for ev in stream:
            kinds.append(ev.type)
        final = stream.get_final_message()
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert "content_block_start" in kinds and "content_block_stop" in kinds and "message_delta" in kinds
    assert final.content[0].text == full.content[0].text  # type: ignore[union-attr]
    assert final.usage.output_tokens == 24 and final.usage.input_tokens == IN_TOKENS
    assert final.stop_reason == "end_turn"


def test_messages_stream_wire_format(mock: MockServer) -> None:
    body = {"model": "claude-haiku-4-5", "max_tokens": 4, "stream": True, "messages": MSGS}
    r = httpx.post(mock.url + "/v1/messages", json=body, headers={"x-api-key": "k", "anthropic-version": "2023-06-01"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = [line[7:] for line in r.text.split("\n") if line.startswith("event: ")]
    assert events == ["message_start", "content_block_start", "ping"] + ["content_block_delta"] * 4 + \
        ["content_block_stop", "message_delta", "message_stop"]
    datas = [json.loads(line[6:]) for line in r.text.split("\n") if line.startswith("data: ")]
    assert datas[0]["message"]["usage"]["output_tokens"] == 1
    assert datas[0]["message"]["usage"]["input_tokens"] == estimate_tokens(body)
    delta = next(d for d in datas if d["type"] == "message_delta")
    assert delta["usage"]["output_tokens"] == 4 and delta["delta"]["stop_reason"] == "max_tokens"


def test_count_tokens(mock: MockServer) -> None:
    r = client(mock).messages.count_tokens(model="claude-haiku-4-5", system=SYSTEM, messages=MSGS)  # type: ignore[arg-type]
    assert r.input_tokens == IN_TOKENS
    assert mock.stats()["by_path"] == {"/v1/messages/count_tokens": 1}


def test_auth_and_validation(mock: MockServer) -> None:
    url = mock.url + "/v1/messages"
    r = httpx.post(url, json={"model": "m", "max_tokens": 5, "messages": MSGS}, headers={"anthropic-version": "2023-06-01"})
    assert r.status_code == 401
    b = r.json()
    assert b["type"] == "error" and b["error"]["type"] == "authentication_error" and b["request_id"].startswith("req_")
    h = {"x-api-key": "sk-ant-x", "anthropic-version": "2023-06-01"}
    assert httpx.post(url, json={"model": "m", "max_tokens": 5, "messages": MSGS}, headers=h).status_code == 200
    r = httpx.post(url, json={"model": "m", "messages": MSGS}, headers=h)
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error" and "max_tokens" in r.json()["error"]["message"]
    r = httpx.post(url, json={"max_tokens": 5, "messages": MSGS}, headers=h)
    assert r.status_code == 400 and "model" in r.json()["error"]["message"]
    r = httpx.post(url, json={"model": "m", "max_tokens": 5}, headers=h)
    assert r.status_code == 400 and "messages" in r.json()["error"]["message"]
    r = httpx.post(url, content=b"[1,", headers=h)
    assert r.status_code == 400


def test_errors_map_to_sdk_exceptions(mock: MockServer) -> None:
    c = client(mock)
    mock.update(rate_529=1.0)
    with pytest.raises(anthropic.InternalServerError) as ei:
        c.messages.create(model="m", max_tokens=5, messages=MSGS)  # type: ignore[arg-type]
    assert ei.value.status_code == 529 and ei.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]
    mock.update(rate_529=0.0, rate_429=1.0)
    with pytest.raises(anthropic.RateLimitError) as e429:
        c.messages.create(model="m", max_tokens=5, messages=MSGS)  # type: ignore[arg-type]
    assert e429.value.response.headers["retry-after"] == "1"
    assert e429.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
    mock.update(rate_429=0.0)
    with pytest.raises(anthropic.InternalServerError) as e500:
        c.messages.create(model="m", max_tokens=5, messages=[{"role": "user", "content": "[mock:error=500]"}])
    assert e500.value.body["error"]["type"] == "api_error"  # type: ignore[index]
    with pytest.raises(anthropic.PermissionDeniedError):
        c.messages.create(model="m", max_tokens=5, messages=[{"role": "user", "content": "[mock:error=403]"}])


def test_rps_limit_sliding_window(mock: MockServer) -> None:
    mock.update(rps_limit=5)
    c = client(mock)
    ok = limited = 0
    last_exc: anthropic.RateLimitError | None = None
    t0 = time.monotonic()
    for _ in range(8):
        try:
            raw = c.messages.with_raw_response.create(model="m", max_tokens=5, messages=MSGS)  # type: ignore[arg-type]
            ok += 1
            remaining = int(raw.headers["anthropic-ratelimit-requests-remaining"])
            assert raw.headers["anthropic-ratelimit-requests-limit"] == "5"
            assert remaining == 5 - ok
        except anthropic.RateLimitError as e:
            limited += 1
            last_exc = e
    assert time.monotonic() - t0 < 0.9, "machine too slow for a 1 s window check"
    assert (ok, limited) == (5, 3)
    assert last_exc is not None and last_exc.response.headers["retry-after"] == "1"
    assert last_exc.response.headers["anthropic-ratelimit-requests-remaining"] == "0"
    time.sleep(1.05)
    c.messages.create(model="m", max_tokens=5, messages=MSGS)  # type: ignore[arg-type]  # window slid: admitted again


def test_stream_cut_and_stream_error(mock: MockServer) -> None:
    c = client(mock)
    got: list[str] = []
    with pytest.raises(Exception) as cut:  # the SDK's transport error (httpx or httpx2 RemoteProtocolError)
        with c.messages.stream(model="m", max_tokens=100, messages=[{"role": "user", "content": "[mock:stream-cut]"}]) as s:
            for ev in s:
                got.append(ev.type)
    assert type(cut.value).__name__ in ("RemoteProtocolError", "APIConnectionError")
    assert "message_start" in got and "message_delta" not in got and "message_stop" not in got
    with pytest.raises(anthropic.APIStatusError, match="overloaded_error"):
        with c.messages.stream(model="m", max_tokens=100, messages=[{"role": "user", "content": "[mock:stream-error]"}]) as s:
            for _ in s:
                pass
