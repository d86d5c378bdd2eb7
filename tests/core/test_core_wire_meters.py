"""Each WireProtocol's stream meter, fed through the shared SSE decoder: usage, answer size,
the end of the stream and a provider's error event, whatever the framing and chunking."""

from __future__ import annotations

import json
from typing import Any

import pytest

from agentdeck.wire import PROTOCOLS, Endpoint
from agentdeck.wire.sse import SSEDecoder


def _frame(events: list[tuple[str | None, Any]], crlf: bool, spaced: bool) -> bytes:
    nl = "\r\n" if crlf else "\n"
    out = ""
    for name, data in events:
        text = data if isinstance(data, str) else json.dumps(data, separators=None if spaced else (",", ":"))
        out += (f"event: {name}{nl}" if name else "") + f"data: {text}{nl}{nl}"
    return out.encode()


def _meter(endpoint: Endpoint, raw: bytes, chunk: int, **parsed: Any) -> tuple[Any, bytes]:
    wire = PROTOCOLS[endpoint]
    body = {"model": "m", "stream": True, **parsed}
    p = wire.parse(endpoint, body, json.dumps(body).encode())
    meter, dec, out = wire.meter(p), SSEDecoder(), b""
    for i in range(0, len(raw), chunk):
        for ev in dec.feed(raw[i : i + chunk]):
            b = meter.feed(ev)
            out += b or b""
    for ev in dec.flush():
        out += meter.feed(ev) or b""
    return meter, out


CHAT = [
    (None, {"choices": [{"index": 0, "delta": {"content": "data: [DONE] is text"}}], "usage": None}),
    (None, {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "{\"a\":1}"}}]}}],
            "usage": None}),
    (None, {"choices": [], "usage": {"prompt_tokens": 100, "completion_tokens": 40,
                                     "prompt_tokens_details": {"cached_tokens": 60},
                                     "completion_tokens_details": {"reasoning_tokens": 30}}}),
    (None, "[DONE]"),
]
MESSAGES = [
    ("message_start", {"type": "message_start", "message": {"usage": {"input_tokens": 10, "cache_read_input_tokens": 500,
                                                                      "cache_creation_input_tokens": 200,
                                                                      "cache_creation": {"ephemeral_1h_input_tokens": 200},
                                                                      "output_tokens": 1}}}),
    ("ping", {"type": "ping"}),
    ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "hmm"}}),
    ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "sig"}}),
    ("content_block_delta", {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "hello"}}),
    ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 77}}),
    ("message_stop", {"type": "message_stop"}),
]
RESPONSES = [
    ("response.output_text.delta", {"type": "response.output_text.delta", "delta": "abcd"}),
    ("response.reasoning_summary_text.delta", {"type": "response.reasoning_summary_text.delta", "delta": "xy"}),
    ("response.completed", {"type": "response.completed", "response": {"usage": {
        "input_tokens": 50, "input_tokens_details": {"cached_tokens": 20}, "output_tokens": 9,
        "output_tokens_details": {"reasoning_tokens": 4}}}}),
]
FRAMINGS = [(crlf, spaced, chunk) for crlf in (False, True) for spaced in (False, True) for chunk in (1, 7, 4096)]


@pytest.mark.parametrize(("crlf", "spaced", "chunk"), FRAMINGS)
def test_chat_meter(crlf: bool, spaced: bool, chunk: int) -> None:
    raw = _frame(CHAT, crlf, spaced)
    m, out = _meter(Endpoint.CHAT, raw, chunk, stream_options={"include_usage": True})
    assert m.done and m.failure is None and out == raw
    assert m.usage is not None and (m.usage.input_tokens, m.usage.cache_read_tokens, m.usage.output_tokens,
                                    m.usage.reasoning_tokens) == (40, 60, 40, 30)
    assert m.text_chars == len("data: [DONE] is text") + len('{"a":1}')
    _, hidden = _meter(Endpoint.CHAT, raw, chunk)  # the client did not ask for usage: that chunk is not passed on
    assert b"prompt_tokens" not in hidden and b'"usage"' not in hidden


@pytest.mark.parametrize(("crlf", "spaced", "chunk"), FRAMINGS)
def test_messages_meter(crlf: bool, spaced: bool, chunk: int) -> None:
    raw = _frame(MESSAGES, crlf, spaced)
    m, out = _meter(Endpoint.MESSAGES, raw, chunk, max_tokens=10)
    assert m.done and out == raw
    u = m.usage
    assert (u.input_tokens, u.cache_read_tokens, u.cache_write_tokens, u.cache_write_1h_tokens, u.output_tokens) == \
        (10, 500, 200, 200, 77)
    assert m.text_chars == len("hmm") + len("hello")


@pytest.mark.parametrize(("crlf", "spaced", "chunk"), FRAMINGS)
def test_responses_meter(crlf: bool, spaced: bool, chunk: int) -> None:
    raw = _frame(RESPONSES, crlf, spaced)
    m, out = _meter(Endpoint.RESPONSES, raw, chunk)
    assert m.done and out == raw
    assert (m.usage.input_tokens, m.usage.cache_read_tokens, m.usage.output_tokens, m.usage.reasoning_tokens) == (30, 20, 9, 4)
    assert m.text_chars == 6


@pytest.mark.parametrize(("endpoint", "events", "status"), [
    (Endpoint.CHAT, [(None, {"choices": [{"delta": {"content": "a"}}]}),
                     (None, {"error": {"message": "boom", "type": "server_error", "code": None}})], 500),
    (Endpoint.MESSAGES, [("error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})], 529),
    (Endpoint.RESPONSES, [("error", {"type": "error", "code": "rate_limit_exceeded", "message": "slow down"})], 429),
])
def test_a_provider_error_event_is_a_failure_not_an_early_end(endpoint: Endpoint, events: Any, status: int) -> None:
    m, out = _meter(endpoint, _frame(events, False, True), 5, **({"max_tokens": 5} if endpoint is Endpoint.MESSAGES else {}))
    assert m.failure is not None and m.failure.status == status and not m.done


def test_junk_in_a_stream_is_passed_on_and_never_raises() -> None:
    raw = b": comment\n\ndata: {not json\n\ndata: 5\n\ndata: {\"choices\": 5, \"usage\": 7}\n\n"
    m, out = _meter(Endpoint.CHAT, raw, 3, stream_options={"include_usage": True})
    assert out == raw and m.usage is None and not m.done
