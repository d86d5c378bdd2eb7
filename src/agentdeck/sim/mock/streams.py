"""How the mock streams: each protocol's SSE event sequence, and the writer that paces it.

Why a plan and a writer: every protocol's stream is a head (before the first token), one
event per token, and a tail (stop reason, usage, done marker), and every one can be cut or
broken half-way by a magic word. The builders say what the events are; `send_stream`
alone decides when each byte goes out. Events are written with the gateway's own
`agentdeck.wire.sse.encode_event`, so the mock and the gateway agree on framing.
"""

from __future__ import annotations

import contextvars
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

import orjson

from agentdeck.sim.mock.answers import (
    Answer,
    anthropic_stop_reason,
    anthropic_usage,
    TOOL_NAME,
    chat_tool_call,
    chat_usage,
    hexid,
    responses_obj,
    split_even,
    thinking_signature,
    thinking_text,
    tool_input,
    tool_use_block,
)
from agentdeck.sim.mock.answers import reasoning_item as reasoning_item_of
from agentdeck.sim.mock.asgi import Headers, Request, Send
from agentdeck.sim.mock.settings import Magic, MockSettings
from agentdeck.wire.sse import encode_comment, encode_event

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


_PING_EVERY = 5
"""With `pings` on, a keep-alive follows every this many token events."""


@dataclass(slots=True, frozen=True)
class Style:
    """How events are written: line ends, JSON spacing, keep-alives (the run's settings)."""

    crlf: bool = False
    spaced_json: bool = False
    pings: bool = False

    @staticmethod
    def of(settings: MockSettings) -> Style:
        """The run's style; one shared instance per combination (this is on every request)."""
        key = (settings.crlf, settings.spaced_json, settings.pings)
        style = _STYLES.get(key)
        if style is None:
            style = _STYLES[key] = Style(*key)
        return style

    def data(self, data: bytes, event: str | None = None) -> bytes:
        """One event with already-serialised JSON `data` (compact from orjson; re-spaced if asked).

        JSON from orjson or json.dumps never holds a raw line end, so every event is one `data:`
        line: the bytes around it come from `encode_event` once per event name and line end
        (`_frame`), and each event is a concatenation (a stream has one event per token).
        """
        if self.spaced_json and data[:1] == b"{":  # every event is an object; [DONE] is not JSON
            data = json.dumps(orjson.loads(data)).encode()
        before, after = _frame(event, self.crlf)
        return before + data + after

    def many(self, event: str | None, datas: list[bytes]) -> list[bytes]:
        """`data` for each of `datas` (the per-token events: one frame lookup for all)."""
        before, after = _frame(event, self.crlf)
        if self.spaced_json:
            datas = [json.dumps(orjson.loads(d)).encode() for d in datas]
        return [before + d + after for d in datas]

    def event(self, event: str | None, obj: dict[str, Any]) -> bytes:
        return self.data(orjson.dumps(obj), event)

    def comment(self) -> bytes:
        return encode_comment("ping", crlf=self.crlf)

    def with_pings(self, chunks: list[bytes], ping: bytes) -> list[bytes]:
        """`ping` after every few token events (joined to the event, so pacing stays per token)."""
        if not self.pings:
            return chunks
        return [c + ping if i % _PING_EVERY == _PING_EVERY - 1 else c for i, c in enumerate(chunks)]

    def opening(self, head: list[bytes]) -> list[bytes]:
        """A `: ping` comment before the first event, as some providers open a stream."""
        return [self.comment() + head[0], *head[1:]] if self.pings and head else head


_STYLES: dict[tuple[bool, bool, bool], Style] = {}
_FRAMES: dict[tuple[str | None, bool], tuple[bytes, bytes]] = {}
_MARK = b"\x00"


def _frame(event: str | None, crlf: bool) -> tuple[bytes, bytes]:
    """The bytes `encode_event` puts before and after a one-line `data` value, cached."""
    key = (event, crlf)
    frame = _FRAMES.get(key)
    if frame is None:
        before, after = encode_event(_MARK, event, crlf=crlf).split(_MARK)
        frame = _FRAMES[key] = (before, after)
    return frame
PLAIN = Style()


def chat_plan(model: str, input_tokens: int, ans: Answer, magic: Magic, include_usage: bool,
              style: Style = PLAIN, tool_use: bool = False) -> StreamPlan:
    """`/v1/chat/completions` with `stream: true`: data-only chunks, then `[DONE]`."""
    cid = "chatcmpl-" + hexid()
    created = int(time.time())
    usage_tail = b',"usage":null}' if include_usage else b"}"
    # The chunk JSON is joined from bytes: one orjson call per token instead of a dict per token.
    prefix = (b'{"id":"' + cid.encode() + b'","object":"chat.completion.chunk","created":' + str(created).encode()
              + b',"model":' + orjson.dumps(model) + b',"service_tier":"default","system_fingerprint":"fp_mock","choices":[{"index":0,"delta":')
    data = style.data
    first = data(prefix + b'{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}]' + usage_tail)
    chunks = style.many(None, [prefix + b'{"content":' + orjson.dumps(p) + b'},"logprobs":null,"finish_reason":null}]' + usage_tail
                               for p in ans.pieces])
    if tool_use:
        call = chat_tool_call(ans)
        args = call["function"]["arguments"]
        start = {"index": 0, "id": call["id"], "type": "function", "function": {"name": TOOL_NAME, "arguments": ""}}
        chunks += style.many(None, [prefix + orjson.dumps({"tool_calls": [d]}) + b',"logprobs":null,"finish_reason":null}]'
                                    + usage_tail for d in [start] + [{"index": 0, "function": {"arguments": a}}
                                                                     for a in split_even(args, 3)]])
    finish = b"length" if ans.truncated else b"tool_calls" if tool_use else b"stop"
    tail = [data(prefix + b'{},"logprobs":null,"finish_reason":"' + finish + b'"}]' + usage_tail)]
    if include_usage:
        tail.append(style.event(None, {
            "id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
            "service_tier": "default", "system_fingerprint": "fp_mock", "choices": [],
            "usage": chat_usage(input_tokens, ans.output_tokens, min(magic.cached, input_tokens), ans.reasoning_tokens),
        }))
    tail.append(data(b"[DONE]"))
    error_event = style.event(None, {"error": {"message": "The server is overloaded (mock provider, mid-stream).",
                                               "type": "server_error", "param": None, "code": "overloaded"}})
    return StreamPlan(style.opening([first]), style.with_pings(chunks, style.comment()), tail, error_event)


def responses_plan(model: str, input_tokens: int, ans: Answer, magic: Magic, body: dict[str, Any],
                   style: Style = PLAIN, reasoning_item: bool = False) -> StreamPlan:
    """`/v1/responses` with `stream: true`: named events with a running `sequence_number`.

    With `reasoning_item`, a reasoning output item (index 0) comes before the message (index 1).
    """
    resp_id, msg_id, created = "resp_" + hexid(48), "msg_" + hexid(48), int(time.time())
    rs_id = "rs_" + hexid(48) if reasoning_item else None
    out = 1 if reasoning_item else 0
    seq = 0

    def ev(kind: str, data: dict[str, Any]) -> bytes:
        nonlocal seq
        data["type"] = kind
        data["sequence_number"] = seq
        seq += 1
        return style.event(kind, data)

    pending = responses_obj(model, input_tokens, ans, magic, body, resp_id, msg_id, created, done=False)
    head = [ev("response.created", {"response": pending}), ev("response.in_progress", {"response": pending})]
    if rs_id is not None:
        head.append(ev("response.output_item.added", {"output_index": 0, "item": reasoning_item_of(rs_id)}))
        head.append(ev("response.output_item.done", {"output_index": 0, "item": reasoning_item_of(rs_id)}))
    head.append(ev("response.output_item.added", {"output_index": out, "item": {
        "id": msg_id, "type": "message", "status": "in_progress", "role": "assistant", "content": []}}))
    head.append(ev("response.content_part.added", {"item_id": msg_id, "output_index": out, "content_index": 0,
                                                   "part": {"type": "output_text", "annotations": [], "logprobs": [], "text": ""}}))
    chunks = [ev("response.output_text.delta", {"item_id": msg_id, "output_index": out, "content_index": 0, "delta": p, "logprobs": []})
              for p in ans.pieces]
    final = responses_obj(model, input_tokens, ans, magic, body, resp_id, msg_id, created, done=True, reasoning_id=rs_id)
    item = final["output"][-1]
    tail = [
        ev("response.output_text.done", {"item_id": msg_id, "output_index": out, "content_index": 0, "text": ans.text, "logprobs": []}),
        ev("response.content_part.done", {"item_id": msg_id, "output_index": out, "content_index": 0, "part": item["content"][0]}),
        ev("response.output_item.done", {"output_index": out, "item": item}),
        ev("response.incomplete" if ans.truncated else "response.completed", {"response": final}),
    ]
    error_event = style.event("error", {"type": "error", "code": "server_error", "message": "The server is overloaded (mock provider, mid-stream).",
                                        "param": None, "sequence_number": len(head) + len(chunks) // 2})
    return StreamPlan(style.opening(head), style.with_pings(chunks, style.comment()), tail, error_event)


def messages_plan(model: str, input_tokens: int, ans: Answer, magic: Magic, style: Style = PLAIN,
                  thinking: bool = False, tool_use: bool = False) -> StreamPlan:
    """`/v1/messages` with `stream: true`: Anthropic's named events.

    Blocks in order: a thinking block (thinking_delta events, then one signature_delta) when
    `thinking`, the text block, a tool_use block (input_json_delta events) when `tool_use`.
    """
    inp, write, read = anthropic_usage(input_tokens, magic)
    start = {"type": "message_start", "message": {
        "id": "msg_" + hexid(), "type": "message", "role": "assistant", "model": model, "content": [],
        "stop_reason": None, "stop_sequence": None,
        "usage": {"input_tokens": inp, "cache_creation_input_tokens": write, "cache_read_input_tokens": read,
                  "output_tokens": 1, "service_tier": "standard"}}}
    ping = style.data(b'{"type": "ping"}', "ping")

    def block_start(index: int, block: dict[str, Any]) -> bytes:
        return style.event("content_block_start", {"type": "content_block_start", "index": index, "content_block": block})

    def block_stop(index: int) -> bytes:
        return style.data(b'{"type":"content_block_stop","index":' + str(index).encode() + b"}", "content_block_stop")

    def deltas(index: int, kind: bytes, field: bytes, values: list[str]) -> list[bytes]:
        """One content_block_delta per value (the JSON around each value is built once per block)."""
        prefix = (b'{"type":"content_block_delta","index":' + str(index).encode() + b',"delta":{"type":"' + kind
                  + b'","' + field + b'":')
        return style.many("content_block_delta", [prefix + orjson.dumps(v) + b"}}" for v in values])

    blocks: list[tuple[dict[str, Any], list[bytes]]] = []  # (block as started, its delta events)
    if thinking:
        text = thinking_text(ans.reasoning_tokens)
        i = len(blocks)
        events = deltas(i, b"thinking_delta", b"thinking", split_even(text, max(1, min(8, len(text.split())))))
        events += deltas(i, b"signature_delta", b"signature", [thinking_signature(text)])
        blocks.append(({"type": "thinking", "thinking": "", "signature": ""}, events))
    i = len(blocks)
    blocks.append(({"type": "text", "text": ""}, deltas(i, b"text_delta", b"text", ans.pieces)))
    if tool_use:
        i = len(blocks)
        block = tool_use_block(ans, with_input=False)
        arguments = orjson.dumps(tool_input(ans)).decode()
        blocks.append((block, deltas(i, b"input_json_delta", b"partial_json", ["", *split_even(arguments, 4)])))

    head = [style.event("message_start", start), block_start(0, blocks[0][0]), ping]
    chunks: list[bytes] = list(blocks[0][1])
    for index, (block, events) in enumerate(blocks[1:], start=1):
        chunks.append(block_stop(index - 1) + block_start(index, block))
        chunks.extend(events)
    tail = [
        block_stop(len(blocks) - 1),
        style.event("message_delta", {"type": "message_delta",
                                      "delta": {"stop_reason": anthropic_stop_reason(ans, tool_use), "stop_sequence": None},
                                      "usage": {"input_tokens": inp, "cache_creation_input_tokens": write,
                                                "cache_read_input_tokens": read, "output_tokens": ans.output_tokens}}),
        style.data(b'{"type":"message_stop"}', "message_stop"),
    ]
    error_event = style.event("error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    return StreamPlan(style.opening(head), style.with_pings(chunks, ping), tail, error_event)


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
