"""The gateway is transparent: recorded provider streams reach the caller byte for byte and
in order, bodies go upstream unchanged except the keys governance must change, provider
errors come back as the provider sent them, and every call is priced from the catalog."""

from __future__ import annotations

import base64
import struct
import zlib
from typing import Any, Iterator

import httpx
import orjson
import pytest
from genai_prices import Usage as CatalogUsage, calc_price

from deck_support import ADMIN_TOKEN, GATEWAY_KEY, PROVIDER_KEY_ANTHROPIC, PROVIDER_KEY_OPENAI
from gateway_replay_support import ReplayProvider, split_events, transcript

STREAMS = {
    "claude-sonnet-4-5-20250929": "anthropic_thinking_tool_use.sse",
    "claude-sonnet-4-5": "anthropic_error_midstream.sse",
    "gpt-4.1-mini-2025-04-14": "openai_chat_crlf_usage.sse",
    "gpt-5-mini-2025-08-07": "openai_responses_reasoning.sse",
}


@pytest.fixture
def replay() -> Iterator[ReplayProvider]:
    rp = ReplayProvider(streams=dict(STREAMS)).start()
    yield rp
    rp.stop()


@pytest.fixture
def gw(make_gateway: Any, replay: ReplayProvider) -> Any:
    return make_gateway(upstream_url=replay.url, providers={
        "anthropic": {"protocol": "anthropic", "base_url": replay.url, "api_key": PROVIDER_KEY_ANTHROPIC,
                      "models": ["claude-*"], "retry": {"backoff_base_s": 0.01, "backoff_max_s": 0.05}},
        "openai": {"protocol": "openai", "base_url": replay.url + "/v1", "api_key": PROVIDER_KEY_OPENAI,
                   "models": ["gpt-*", "o[0-9]*"], "retry": {"backoff_base_s": 0.01, "backoff_max_s": 0.05}},
    })


def _headers(**extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {GATEWAY_KEY}", "content-type": "application/json", **extra}


def _row(gw: Any, rid: str) -> dict[str, Any]:
    r = httpx.get(gw.url + "/admin/requests?limit=50", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    rows = [row for row in r.json()["requests"] if row["id"] == rid]
    assert rows, f"request {rid} was not recorded"
    return rows[0]


def _catalog_cost(model: str, provider: str, total_in: int, cache_read: int, cache_write: int, out: int) -> float:
    usage = CatalogUsage(input_tokens=total_in, cache_read_tokens=cache_read, cache_write_tokens=cache_write,
                         output_tokens=out)
    return float(calc_price(usage, model_ref=model, provider_id=provider).total_price)


def _stream(gw: Any, replay: ReplayProvider, path: str, body: dict[str, Any]) -> tuple[bytes, str]:
    """Stream through the gateway; the replay holds its last event until the first one reached us."""
    replay.hold_last = True
    got = b""
    with httpx.Client(timeout=20) as c, c.stream("POST", gw.url + path, json=body, headers=_headers()) as r:
        assert r.status_code == 200
        rid = r.headers["x-agentdeck-request-id"]
        for chunk in r.iter_raw():
            if not got:
                assert not replay.finished.is_set(), "the first event waited for the end of the upstream stream"
                replay.release.set()
            got += chunk
    return got, rid


CASES = [
    ("/v1/messages", {"model": "claude-sonnet-4-5-20250929", "max_tokens": 1024, "stream": True,
                      "messages": [{"role": "user", "content": "list the files"}]},
     "anthropic", (2095 + 1200 + 30000, 30000, 1200, 187)),
    ("/v1/chat/completions", {"model": "gpt-4.1-mini-2025-04-14", "max_completion_tokens": 800, "stream": True,
                              "stream_options": {"include_usage": True},
                              "messages": [{"role": "user", "content": "when does a stream end?"}]},
     "openai", (1500, 1024, 0, 320)),
    ("/v1/responses", {"model": "gpt-5-mini-2025-08-07", "max_output_tokens": 2000, "stream": True,
                       "input": "run the tests"},
     "openai", (5200, 4096, 0, 900)),
]


@pytest.mark.parametrize(("path", "body", "provider", "tokens"), CASES, ids=["anthropic", "openai-chat-crlf", "responses"])
def test_recorded_streams_pass_byte_for_byte_incrementally_and_priced_from_the_catalog(
        gw: Any, replay: ReplayProvider, path: str, body: dict[str, Any], provider: str,
        tokens: tuple[int, int, int, int]) -> None:
    got, rid = _stream(gw, replay, path, body)
    want = transcript(STREAMS[body["model"]])
    assert got == want  # every event, in order, byte for byte (CRLF framing and spaced JSON included)
    row = _row(gw, rid)
    total_in, cache_read, cache_write, out = tokens
    assert row["status"] == 200 and row["model"] == body["model"]
    assert row["output_tokens"] == out
    assert row["cost_usd"] == pytest.approx(_catalog_cost(body["model"], provider, *tokens), rel=1e-6)


def test_chat_usage_chunk_the_client_did_not_ask_for_is_hidden_but_priced(gw: Any, replay: ReplayProvider) -> None:
    body = {"model": "gpt-4.1-mini-2025-04-14", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    got, rid = _stream(gw, replay, "/v1/chat/completions", body)
    sent = orjson.loads(replay.requests[-1].body)
    assert sent["stream_options"] == {"include_usage": True}
    assert b'"usage"' not in got and got.endswith(b"data: [DONE]\r\n\r\n")
    assert b"data: [DONE] " in got  # a delta whose text holds [DONE] did not end the stream
    assert _row(gw, rid)["cost_usd"] == pytest.approx(_catalog_cost(body["model"], "openai", 1500, 1024, 0, 320), rel=1e-6)


def test_a_provider_error_event_mid_stream_reaches_the_caller_as_sent_and_is_recorded_failed(
        gw: Any, replay: ReplayProvider) -> None:
    body = {"model": "claude-sonnet-4-5", "max_tokens": 500, "stream": True, "messages": [{"role": "user", "content": "x"}]}
    got, rid = _stream(gw, replay, "/v1/messages", body)
    assert got == transcript("anthropic_error_midstream.sse")  # nothing of ours appended
    row = _row(gw, rid)
    assert row["status"] == 529 and "overloaded" in (row.get("error") or "")
    text = "Partial answer before the provider gave up"
    assert row["cost_usd"] == pytest.approx(_catalog_cost("claude-sonnet-4-5", "anthropic", 800, 0, 0, -(-len(text) // 4)),
                                            rel=1e-6)


CLAUDE_CODE_BODY: dict[str, Any] = {
    "model": "claude-opus-5-5",
    "messages": [
        {"role": "user", "content": [{"type": "text", "text": "fix the failing test", "cache_control": {"type": "ephemeral"}}]},
        {"role": "system", "content": "<system-reminder>The user opened tests/test_x.py</system-reminder>"},
    ],
    "system": [{"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral", "ttl": "1h"}}],
    "tools": [{"name": "Bash", "description": "run a command",
               "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}}],
    "metadata": {"user_id": "user_abc_account_def_session_ghi"},
    "max_tokens": 64000,
    "thinking": {"type": "enabled", "budget_tokens": 40000},
    "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
    "output_config": {"effort": "high"},
    "stream": False,
    "temperature": 1,
}


def test_a_claude_code_body_arrives_unchanged_but_for_the_documented_keys(gw: Any, replay: ReplayProvider) -> None:
    beta = "interleaved-thinking-2025-05-14,context-management-2025-06-27,ünï"
    r = httpx.post(gw.url + "/v1/messages?beta=true", content=orjson.dumps(CLAUDE_CODE_BODY),
                   headers={**_headers(), "anthropic-version": "2023-06-01", "anthropic-beta": beta.encode("utf-8"),
                            "x-claude-code-session-id": "3f1c", "x-app": "cli", "x-stainless-retry-count": "0"})
    assert r.status_code == 200, r.text
    up = replay.requests[-1]
    assert up.path == "/v1/messages" and up.query == "beta=true"
    assert (up.headers["x-claude-code-session-id"], up.headers["x-app"], up.headers["x-stainless-retry-count"]) == \
        (b"3f1c", b"cli", b"0")  # the client's own headers pass; only its gateway key stays behind
    assert GATEWAY_KEY.encode() not in b"".join(up.headers.values())
    sent = up.json
    changed = {k for k in CLAUDE_CODE_BODY if sent.get(k) != CLAUDE_CODE_BODY[k]} | (set(sent) - set(CLAUDE_CODE_BODY))
    assert changed <= {"max_tokens"}
    assert 40000 < sent["max_tokens"] <= 64000  # capped, never to or below the thinking budget
    assert up.headers["anthropic-beta"] == beta.encode("utf-8")  # byte for byte
    assert up.headers["anthropic-version"] == b"2023-06-01"
    assert up.headers["x-api-key"] == PROVIDER_KEY_ANTHROPIC.encode() and "authorization" not in up.headers


def test_a_body_the_gateway_need_not_change_is_forwarded_as_the_same_bytes(gw: Any, replay: ReplayProvider) -> None:
    raw = b'{"model": "claude-haiku-4-5",  "max_tokens": 100, "messages": [{"role": "user", "content": "x"}], "x_new": 1}'
    r = httpx.post(gw.url + "/v1/messages", content=raw, headers=_headers())
    assert r.status_code == 200
    assert replay.requests[-1].body == raw


def test_openai_token_limits_as_the_provider_wants_them(gw: Any, replay: ReplayProvider) -> None:
    msgs = [{"role": "user", "content": "x"}]
    replay.answers["gpt-5.1"] = (200, {}, orjson.dumps({"id": "c", "object": "chat.completion", "choices": [],
                                                        "usage": {"prompt_tokens": 3, "completion_tokens": 1}}))
    for body, want in (
        ({"model": "gpt-5.1", "messages": msgs}, {"max_completion_tokens"}),          # added: the field every model takes
        ({"model": "gpt-5.1", "messages": msgs, "max_completion_tokens": 10_000_000}, {"max_completion_tokens"}),  # read and clamped
        ({"model": "gpt-5.1", "messages": msgs, "max_tokens": 50}, set()),            # the client's own field, kept as sent
    ):
        r = httpx.post(gw.url + "/v1/chat/completions", json=body, headers=_headers())
        assert r.status_code == 200, r.text
        sent = replay.requests[-1].json
        assert {k for k in sent if sent.get(k) != body.get(k)} == want
        assert "max_tokens" not in sent or sent["max_tokens"] == 50
        if want:
            assert 0 < sent["max_completion_tokens"] < 10_000_000
    replay.answers["gpt-5-mini"] = (200, {}, orjson.dumps({"id": "r", "object": "response", "output": [],
                                                           "usage": {"input_tokens": 3, "output_tokens": 1}}))
    r = httpx.post(gw.url + "/v1/responses", json={"model": "gpt-5-mini", "input": "x", "max_output_tokens": 10_000_000},
                   headers=_headers())
    assert r.status_code == 200
    assert 0 < replay.requests[-1].json["max_output_tokens"] < 10_000_000


def test_provider_errors_come_back_with_their_status_body_and_retry_headers_and_no_secret(
        gw: Any, replay: ReplayProvider) -> None:
    err = {"type": "error", "error": {"type": "rate_limit_error",
                                      "message": f"key {PROVIDER_KEY_ANTHROPIC} is over its limit"},
           "request_id": "req_011CS"}
    replay.answers["claude-haiku-4-5"] = (429, {"retry-after": "7", "x-should-retry": "false", "request-id": "req_011CS",
                                                "anthropic-ratelimit-requests-remaining": "0"}, orjson.dumps(err))
    r = httpx.post(gw.url + "/v1/messages", headers=_headers(),
                   json={"model": "claude-haiku-4-5", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]})
    assert r.status_code == 429
    assert r.headers["retry-after"] == "7" and r.headers["x-should-retry"] == "false"
    assert r.headers["request-id"] == "req_011CS" and r.headers["anthropic-ratelimit-requests-remaining"] == "0"
    body = r.json()
    assert body["error"]["type"] == "rate_limit_error" and body["request_id"] == "req_011CS"
    assert PROVIDER_KEY_ANTHROPIC not in r.text
    assert len(replay.requests) == 1  # x-should-retry: false is honoured: no retry of a 429


def _png(width: int, height: int, size: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return b"\x89PNG\r\n\x1a\n" + chunk + bytes(size)


def test_a_900_kb_image_is_counted_as_an_image_not_as_text(gw: Any, replay: ReplayProvider) -> None:
    from agentdeck.wire.estimate import estimate_input_tokens

    img = base64.b64encode(_png(1200, 800, 900_000)).decode()
    body = {"model": "claude-haiku-4-5", "max_tokens": 100, "messages": [{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": img}},
        {"type": "text", "text": "what is in this screenshot?"}]}]}
    raw = orjson.dumps(body)
    assert estimate_input_tokens(raw, body) < 1700  # 1200x800/750 = 1,280 tokens, plus the text
    r = httpx.post(gw.url + "/v1/messages", content=raw, headers=_headers())
    assert r.status_code == 200, r.text
    chat = {"model": "gpt-4.1", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{img}"}}]}]}
    assert estimate_input_tokens(orjson.dumps(chat), chat) < 1700


def test_the_events_split_as_providers_flush_them() -> None:
    raw = transcript("openai_chat_crlf_usage.sse")
    assert b"".join(split_events(raw)) == raw and len(split_events(raw)) == 7
