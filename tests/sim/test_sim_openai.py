"""The official openai SDK against the mock: every shape parses and the usage numbers are right."""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from agentdeck.sim import MockServer
from agentdeck.sim.mock import estimate_tokens


def client(mock: MockServer, **kw: object) -> openai.OpenAI:
    return openai.OpenAI(base_url=mock.url + "/v1", api_key="sk-test-openai", max_retries=0, **kw)  # type: ignore[arg-type]


MSGS = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Name three colours, please."}]
PROMPT_TOKENS = estimate_tokens({"messages": MSGS})


def test_prompt_estimate_is_four_chars_per_token() -> None:
    chars = len("You are terse.") + len("Name three colours, please.")
    assert PROMPT_TOKENS == (chars + 3) // 4
    assert estimate_tokens({"messages": [{"role": "user", "content": ""}]}) == 1


def test_chat_non_stream(mock: MockServer) -> None:
    raw = client(mock).chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MSGS)  # type: ignore[arg-type]
    r = raw.parse()
    assert r.object == "chat.completion" and r.model == "gpt-4o-mini"
    text = r.choices[0].message.content or ""
    assert text.startswith("model=gpt-4o-mini ")
    assert len(text.split()) == 24
    assert r.choices[0].finish_reason == "stop"
    assert r.usage is not None
    assert (r.usage.prompt_tokens, r.usage.completion_tokens, r.usage.total_tokens) == (PROMPT_TOKENS, 24, PROMPT_TOKENS + 24)
    assert r.usage.prompt_tokens_details.cached_tokens == 0  # type: ignore[union-attr]
    assert r.usage.completion_tokens_details.reasoning_tokens == 0  # type: ignore[union-attr]
    h = raw.headers
    assert h["x-request-id"].startswith("req_")
    for name in ("limit", "remaining", "reset"):
        assert h[f"x-ratelimit-{name}-requests"] and h[f"x-ratelimit-{name}-tokens"]


def test_chat_text_is_deterministic(mock: MockServer) -> None:
    c = client(mock)
    a = c.chat.completions.create(model="gpt-4o", messages=MSGS).choices[0].message.content  # type: ignore[arg-type]
    b = c.chat.completions.create(model="gpt-4o", messages=MSGS).choices[0].message.content  # type: ignore[arg-type]
    assert a == b
    mock.update(seed=7)
    assert c.chat.completions.create(model="gpt-4o", messages=MSGS).choices[0].message.content != a  # type: ignore[arg-type]


@pytest.mark.parametrize("param", ["max_tokens", "max_completion_tokens"])
def test_chat_length_when_max_tokens_short(mock: MockServer, param: str) -> None:
    r = client(mock).chat.completions.create(model="gpt-4o-mini", messages=MSGS, **{param: 5})  # type: ignore[arg-type]
    assert r.choices[0].finish_reason == "length"
    assert r.usage is not None and r.usage.completion_tokens == 5
    assert len((r.choices[0].message.content or "").split()) == 5
    r = client(mock).chat.completions.create(model="gpt-4o-mini", messages=MSGS, **{param: 500})  # type: ignore[arg-type]
    assert r.choices[0].finish_reason == "stop"


def test_chat_stream_with_usage(mock: MockServer) -> None:
    c = client(mock)
    full = c.chat.completions.create(model="gpt-4o-mini", messages=MSGS).choices[0].message.content  # type: ignore[arg-type]
    chunks = list(c.chat.completions.create(model="gpt-4o-mini", messages=MSGS, stream=True,  # type: ignore[arg-type]
                                            stream_options={"include_usage": True}))
    assert all(ch.object == "chat.completion.chunk" for ch in chunks)
    *body, last = chunks
    assert last.choices == [] and last.usage is not None
    assert (last.usage.prompt_tokens, last.usage.completion_tokens, last.usage.total_tokens) == (PROMPT_TOKENS, 24, PROMPT_TOKENS + 24)
    assert all(ch.usage is None for ch in body)
    assert body[0].choices[0].delta.role == "assistant"
    assert "".join(ch.choices[0].delta.content or "" for ch in body) == full
    assert body[-1].choices[0].finish_reason == "stop"
    assert len({ch.id for ch in chunks}) == 1


def test_chat_stream_wire_format(mock: MockServer) -> None:
    """Without include_usage no usage key at all, and the stream ends with [DONE]."""
    body = {"model": "gpt-4o-mini", "messages": MSGS, "stream": True, "max_tokens": 3}
    r = httpx.post(mock.url + "/v1/chat/completions", json=body, headers={"Authorization": "Bearer k"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = [line[6:] for line in r.text.split("\n") if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    parsed = [json.loads(e) for e in events[:-1]]
    assert all("usage" not in p for p in parsed)
    assert parsed[-1]["choices"][0]["finish_reason"] == "length"
    assert sum(1 for p in parsed if p["choices"][0]["delta"].get("content")) == 3


def test_responses_non_stream(mock: MockServer) -> None:
    r = client(mock).responses.create(model="gpt-4.1", input="Summarise the weather. [mock:cached=2] [mock:reasoning=3]",
                                      instructions="Be brief.")
    assert r.object == "response" and r.status == "completed" and r.model == "gpt-4.1"
    assert r.output_text.startswith("model=gpt-4.1 ")
    assert r.output[0].type == "message"
    u = r.usage
    assert u is not None
    expected_in = estimate_tokens({"input": "Summarise the weather. [mock:cached=2] [mock:reasoning=3]", "instructions": "Be brief."})
    assert (u.input_tokens, u.output_tokens, u.total_tokens) == (expected_in, 27, expected_in + 27)
    assert u.input_tokens_details.cached_tokens == 2
    assert u.output_tokens_details.reasoning_tokens == 3


def test_responses_stream(mock: MockServer) -> None:
    c = client(mock)
    kinds: list[str] = []
    deltas: list[str] = []
    with c.responses.stream(model="gpt-5-mini", input=[{"role": "user", "content": "hello"}]) as stream:
        for ev in stream:
            kinds.append(ev.type)
            if ev.type == "response.output_text.delta":
                deltas.append(ev.delta)
        final = stream.get_final_response()
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    assert kinds.count("response.output_text.delta") == 24
    assert final.output_text == "".join(deltas) and final.output_text.startswith("model=gpt-5-mini")
    assert final.usage is not None and final.usage.output_tokens == 24 and final.usage.input_tokens == 2


def test_responses_truncated_is_incomplete(mock: MockServer) -> None:
    c = client(mock)
    r = c.responses.create(model="gpt-4.1", input="go", max_output_tokens=4)
    assert r.status == "incomplete" and r.incomplete_details is not None
    assert r.incomplete_details.reason == "max_output_tokens"
    assert r.usage is not None and r.usage.output_tokens == 4
    events = [ev.type for ev in c.responses.create(model="gpt-4.1", input="go", max_output_tokens=4, stream=True)]
    assert events[-1] == "response.incomplete"


def test_models(mock: MockServer) -> None:
    ids = [m.id for m in client(mock).models.list()]
    assert "gpt-4o-mini" in ids and "claude-haiku-4-5" in ids


def test_auth_and_validation_errors(mock: MockServer) -> None:
    url = mock.url + "/v1/chat/completions"
    r = httpx.post(url, json={"model": "m", "messages": MSGS})
    assert r.status_code == 401 and r.json()["error"]["type"] == "invalid_request_error"
    assert set(r.json()["error"]) == {"message", "type", "param", "code"}
    auth = {"Authorization": "Bearer k"}
    r = httpx.post(url, content=b"{not json", headers=auth)
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"
    r = httpx.post(url, json={"messages": MSGS}, headers=auth)
    assert r.status_code == 400 and r.json()["error"]["param"] == "model"
    r = httpx.post(url, json={"model": "m"}, headers=auth)
    assert r.status_code == 400 and r.json()["error"]["param"] == "messages"
    r = httpx.post(url, json={"model": "m", "messages": MSGS}, headers={"Authorization": "Basic dXNlcjpwdw=="})
    assert r.status_code == 401


def test_injected_429_raises_rate_limit_error(mock: MockServer) -> None:
    mock.update(rate_429=1.0)
    with pytest.raises(openai.RateLimitError) as ei:
        client(mock).chat.completions.create(model="gpt-4o-mini", messages=MSGS)  # type: ignore[arg-type]
    assert ei.value.response.headers["retry-after"] == "1"
    assert ei.value.body["code"] == "rate_limit_exceeded"  # type: ignore[index]
    mock.update(rate_429=0.0, rate_529=1.0)
    with pytest.raises(openai.InternalServerError) as ei5:
        client(mock).chat.completions.create(model="gpt-4o-mini", messages=MSGS)  # type: ignore[arg-type]
    assert ei5.value.status_code == 503
    mock.update(rate_529=0.0, rate_5xx=1.0)
    with pytest.raises(openai.InternalServerError) as ei6:
        client(mock).chat.completions.create(model="gpt-4o-mini", messages=MSGS)  # type: ignore[arg-type]
    assert ei6.value.status_code == 500 and ei6.value.body["type"] == "server_error"  # type: ignore[index]
    assert mock.stats()["status_counts"] == {"429": 1, "503": 1, "500": 1}


def test_sdk_retries_injected_429_then_succeeds(mock: MockServer) -> None:
    """retry-after is honoured by the SDK's own retry loop (x-stainless-retry-count goes up)."""
    mock.update(rate_429=0.5, seed=3)
    c = openai.OpenAI(base_url=mock.url + "/v1", api_key="k", max_retries=6)
    statuses_before = mock.stats()["status_counts"]
    assert statuses_before == {}
    # find a request that hits at least one 429 before its 200, within a few calls
    for _ in range(5):
        c.chat.completions.create(model="gpt-4o-mini", messages=MSGS)  # type: ignore[arg-type]
        if mock.stats()["status_counts"].get("429"):
            break
    st = mock.stats()
    assert st["status_counts"]["429"] >= 1 and st["status_counts"]["200"] >= 1


def test_magic_words(mock: MockServer) -> None:
    c = client(mock)

    def ask(text: str, **kw: object) -> openai.types.chat.ChatCompletion:
        return c.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": text}], **kw)  # type: ignore[arg-type,return-value]

    doc = json.loads(ask("[mock:json] go").choices[0].message.content or "")
    assert doc["ok"] is True and doc["model"] == "gpt-4o-mini"
    with pytest.raises(json.JSONDecodeError):
        json.loads(ask("[mock:badjson] go").choices[0].message.content or "")
    assert ask("[mock:empty]").choices[0].message.content == ""
    r = ask("[mock:tokens=7]")
    assert r.usage is not None and r.usage.completion_tokens == 7 and len((r.choices[0].message.content or "").split()) == 7
    r = ask("[mock:truncate]", max_tokens=9)
    assert r.choices[0].finish_reason == "length" and r.usage is not None and r.usage.completion_tokens == 9
    with pytest.raises(openai.InternalServerError) as ei:
        ask("[mock:error=502]")
    assert ei.value.status_code == 502
    with pytest.raises(openai.BadRequestError):
        ask("[mock:error=400]")
    # only the LAST user message counts
    r = c.chat.completions.create(model="gpt-4o-mini", messages=[  # type: ignore[arg-type]
        {"role": "user", "content": "[mock:error=500]"}, {"role": "assistant", "content": "ok"},
        {"role": "user", "content": [{"type": "text", "text": "fine [mock:tokens=3]"}]}])
    assert r.usage is not None and r.usage.completion_tokens == 3


def test_magic_slow(mock: MockServer) -> None:
    import time

    t = time.perf_counter()
    client(mock).chat.completions.create(model="m", messages=[{"role": "user", "content": "[mock:slow=250]"}])  # type: ignore[arg-type]
    assert time.perf_counter() - t >= 0.25


def test_stream_cut_has_no_usage_and_no_done(mock: MockServer) -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "[mock:stream-cut]"}], "stream": True,
            "stream_options": {"include_usage": True}}
    got = b""
    with pytest.raises(httpx.RemoteProtocolError):
        with httpx.stream("POST", mock.url + "/v1/chat/completions", json=body, headers={"Authorization": "Bearer k"}) as r:
            assert r.status_code == 200
            for chunk in r.iter_bytes():
                got += chunk
    assert b"[DONE]" not in got and b'"usage":{' not in got and b'"content":"model=m"' in got
    with pytest.raises((openai.APIConnectionError, httpx.RemoteProtocolError)):
        list(client(mock).chat.completions.create(model="m", messages=body["messages"], stream=True))  # type: ignore[arg-type]


def test_stream_error_event_raises_in_sdk(mock: MockServer) -> None:
    with pytest.raises(openai.APIError, match="overloaded"):
        list(client(mock).chat.completions.create(model="m", messages=[{"role": "user", "content": "[mock:stream-error]"}], stream=True))  # type: ignore[arg-type]
