"""How the mock streams: each protocol's SSE event sequence, and the writer that paces it.

Why a plan and a writer: every protocol's stream is a head (before the first token), one
event per token, and a tail (stop reason, usage, done marker), and every one can be cut or
broken half-way by a magic word. The builders say what the events are; `send_stream`
alone decides when each byte goes out. Events are written with the gateway's own
`agentdeck.wire.sse.encode_event`, so the mock and the gateway agree on framing.
"""

from __future__ import annotations

import contextvars
import logging
import time
from dataclasses import dataclass
from typing import Any

import orjson

from agentdeck.sim.mock.answers import Answer, anthropic_usage, chat_usage, hexid, responses_obj
from agentdeck.sim.mock.asgi import Headers, Request, Send
from agentdeck.sim.mock.settings import Magic
from agentdeck.wire.sse import encode_event

SSE_HEADERS: Headers = [(b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-cache")]

_CUT = contextvars.ContextVar("agentdeck_mock_cut", default=False)


class _QuietCut(logging.Filter):
    """Drop uvicorn's error line for streams the mock cuts on purpose ([mock:stream-cut])."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not _CUT.get()


_filter_installed = False


def install_log_filter() -> None:
    """Once per process: keep deliberate stream cuts out of uvicorn's error log."""
    global _filter_installed
    if not _filter_installed:
        logging.getLogger("uvicorn.error").addFilter(_QuietCut())
        _filter_installed = True


@dataclass(slots=True)
class StreamPlan:
    """One stream's events, already framed: what goes before, per token, after, and if it breaks."""

    head: list[bytes]
    chunks: list[bytes]
    tail: list[bytes]
    error_event: bytes


def _event(event: str | None, data: dict[str, Any]) -> bytes:
    return encode_event(orjson.dumps(data), event)


def chat_plan(model: str, input_tokens: int, ans: Answer, magic: Magic, include_usage: bool) -> StreamPlan:
    """`/v1/chat/completions` with `stream: true`: data-only chunks, then `[DONE]`."""
    cid = "chatcmpl-" + hexid()
    created = int(time.time())
    usage_tail = b',"usage":null}' if include_usage else b"}"
    # The chunk JSON is joined from bytes: one orjson call per token instead of a dict per token.
    prefix = (b'{"id":"' + cid.encode() + b'","object":"chat.completion.chunk","created":' + str(created).encode()
              + b',"model":' + orjson.dumps(model) + b',"service_tier":"default","system_fingerprint":"fp_mock","choices":[{"index":0,"delta":')
    first = encode_event(prefix + b'{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}]' + usage_tail)
    chunks = [encode_event(prefix + b'{"content":' + orjson.dumps(p) + b'},"logprobs":null,"finish_reason":null}]' + usage_tail)
              for p in ans.pieces]
    finish = b"length" if ans.truncated else b"stop"
    tail = [encode_event(prefix + b'{},"logprobs":null,"finish_reason":"' + finish + b'"}]' + usage_tail)]
    if include_usage:
        tail.append(_event(None, {
            "id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
            "service_tier": "default", "system_fingerprint": "fp_mock", "choices": [],
            "usage": chat_usage(input_tokens, ans.output_tokens, min(magic.cached, input_tokens), ans.reasoning_tokens),
        }))
    tail.append(encode_event(b"[DONE]"))
    error_event = _event(None, {"error": {"message": "The server is overloaded (mock provider, mid-stream).",
                                          "type": "server_error", "param": None, "code": "overloaded"}})
    return StreamPlan([first], chunks, tail, error_event)


def responses_plan(model: str, input_tokens: int, ans: Answer, magic: Magic, body: dict[str, Any]) -> StreamPlan:
    """`/v1/responses` with `stream: true`: named events with a running `sequence_number`."""
    resp_id, msg_id, created = "resp_" + hexid(48), "msg_" + hexid(48), int(time.time())
    seq = 0

    def ev(kind: str, data: dict[str, Any]) -> bytes:
        nonlocal seq
        data["type"] = kind
        data["sequence_number"] = seq
        seq += 1
        return _event(kind, data)

    pending = responses_obj(model, input_tokens, ans, magic, body, resp_id, msg_id, created, done=False)
    head = [ev("response.created", {"response": pending}), ev("response.in_progress", {"response": pending})]
    head.append(ev("response.output_item.added", {"output_index": 0, "item": {
        "id": msg_id, "type": "message", "status": "in_progress", "role": "assistant", "content": []}}))
    head.append(ev("response.content_part.added", {"item_id": msg_id, "output_index": 0, "content_index": 0,
                                                   "part": {"type": "output_text", "annotations": [], "logprobs": [], "text": ""}}))
    chunks = [ev("response.output_text.delta", {"item_id": msg_id, "output_index": 0, "content_index": 0, "delta": p, "logprobs": []})
              for p in ans.pieces]
    final = responses_obj(model, input_tokens, ans, magic, body, resp_id, msg_id, created, done=True)
    item = final["output"][0]
    tail = [
        ev("response.output_text.done", {"item_id": msg_id, "output_index": 0, "content_index": 0, "text": ans.text, "logprobs": []}),
        ev("response.content_part.done", {"item_id": msg_id, "output_index": 0, "content_index": 0, "part": item["content"][0]}),
        ev("response.output_item.done", {"output_index": 0, "item": item}),
        ev("response.incomplete" if ans.truncated else "response.completed", {"response": final}),
    ]
    error_event = _event("error", {"type": "error", "code": "server_error", "message": "The server is overloaded (mock provider, mid-stream).",
                                   "param": None, "sequence_number": len(head) + len(chunks) // 2})
    return StreamPlan(head, chunks, tail, error_event)


def messages_plan(model: str, input_tokens: int, ans: Answer, magic: Magic) -> StreamPlan:
    """`/v1/messages` with `stream: true`: Anthropic's named events, one text block."""
    inp, write, read = anthropic_usage(input_tokens, magic)
    start = {"type": "message_start", "message": {
        "id": "msg_" + hexid(), "type": "message", "role": "assistant", "model": model, "content": [],
        "stop_reason": None, "stop_sequence": None,
        "usage": {"input_tokens": inp, "cache_creation_input_tokens": write, "cache_read_input_tokens": read,
                  "output_tokens": 1, "service_tier": "standard"}}}
    head = [
        _event("message_start", start),
        _event("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        encode_event(b'{"type": "ping"}', "ping"),
    ]
    chunks = [encode_event(b'{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":' + orjson.dumps(p) + b"}}",
                           "content_block_delta") for p in ans.pieces]
    tail = [
        encode_event(b'{"type":"content_block_stop","index":0}', "content_block_stop"),
        _event("message_delta", {"type": "message_delta",
                                 "delta": {"stop_reason": "max_tokens" if ans.truncated else "end_turn", "stop_sequence": None},
                                 "usage": {"input_tokens": inp, "cache_creation_input_tokens": write,
                                           "cache_read_input_tokens": read, "output_tokens": ans.output_tokens}}),
        encode_event(b'{"type":"message_stop"}', "message_stop"),
    ]
    error_event = _event("error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    return StreamPlan(head, chunks, tail, error_event)


async def send_stream(req: Request, send: Send, headers: Headers, plan: StreamPlan, magic: Magic, token_ms: float) -> int:
    """Send head, the per-token chunks (token_ms apart) and the tail; or cut/error half-way."""
    await send({"type": "http.response.start", "status": 200, "headers": headers + SSE_HEADERS})
    head, chunks, tail = plan.head, plan.chunks, plan.tail
    token_s = token_ms / 1000.0
    broken = magic.stream_cut or magic.stream_error
    if broken:
        half = len(chunks) // 2
        parts = head + chunks[:half]
    else:
        parts = head + chunks + tail
    if token_s <= 0:
        await send({"type": "http.response.body", "body": b"".join(parts), "more_body": True})
    else:
        await send({"type": "http.response.body", "body": b"".join(head), "more_body": True})
        for c in chunks[: len(parts) - len(head)]:
            await req.pause(token_s)
            await send({"type": "http.response.body", "body": c, "more_body": True})
        if not broken:
            # the closing events go out together, as a provider flushes them at the end
            await send({"type": "http.response.body", "body": b"".join(tail), "more_body": True})
    if magic.stream_cut:
        _CUT.set(True)  # returning without completing makes uvicorn drop the connection
        return 200
    if magic.stream_error:
        await send({"type": "http.response.body", "body": plan.error_event, "more_body": False})
        return 200
    await send({"type": "http.response.body", "body": b"", "more_body": False})
    return 200
