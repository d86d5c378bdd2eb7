"""Anthropic messages to and from the canonical form."""

from __future__ import annotations

from typing import Any

import orjson

from agentdeck.pricing import Usage
from agentdeck.wire import anthropic
from agentdeck.wire.base import as_dict
from agentdeck.wire.sse import SSEEvent
from agentdeck.wire.translate.canonical import (Event, Failure, Finish, Part, Request, Response, Start, Stop, TextDelta,
                                                Tool, ToolArgs, ToolStart, Turn)
from agentdeck.wire.translate.common import json_args, new_id, text_of_blocks

NAME = "anthropic"
API_VERSION = "2023-06-01"
_STOP_IN: dict[str, Stop] = {"end_turn": "end", "max_tokens": "max_tokens", "tool_use": "tool_use",
                             "stop_sequence": "stop_sequence", "refusal": "content_filter", "pause_turn": "end",
                             "model_context_window_exceeded": "max_tokens"}
_STOP_OUT: dict[str, str] = {"end": "end_turn", "max_tokens": "max_tokens", "tool_use": "tool_use",
                             "stop_sequence": "stop_sequence", "content_filter": "refusal"}


def _blocks_in(content: Any, names: dict[str, str]) -> list[Part]:
    if isinstance(content, str):
        return [Part("text", text=content)] if content else []
    out: list[Part] = []
    for b in content if isinstance(content, list) else ():
        if not isinstance(b, dict):
            continue
        kind = b.get("type")
        if kind == "text" and isinstance(b.get("text"), str):
            out.append(Part("text", text=b["text"]))
        elif kind == "image":
            src = as_dict(b.get("source"))
            if src.get("type") == "base64":
                out.append(Part("image", media_type=str(src.get("media_type") or ""), data=str(src.get("data") or "")))
            elif src.get("type") == "url":
                out.append(Part("image", url=str(src.get("url") or "")))
        elif kind == "tool_use":
            cid = str(b.get("id") or new_id("toolu_"))
            names[cid] = str(b.get("name") or "")
            out.append(Part("tool_call", call_id=cid, name=names[cid], arguments=orjson.dumps(b.get("input") or {}).decode()))
        elif kind == "tool_result":
            cid = str(b.get("tool_use_id") or "")
            out.append(Part("tool_result", call_id=cid, name=names.get(cid, ""), text=text_of_blocks(b.get("content")),
                            is_error=b.get("is_error") is True))
    return out


def _blocks_out(parts: list[Part]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for p in parts:
        if p.kind == "text":
            if p.text:
                out.append({"type": "text", "text": p.text})
        elif p.kind == "image":
            src = ({"type": "url", "url": p.url} if p.url else
                   {"type": "base64", "media_type": p.media_type, "data": p.data})
            out.append({"type": "image", "source": src})
        elif p.kind == "tool_call":
            out.append({"type": "tool_use", "id": p.call_id, "name": p.name, "input": json_args(p.arguments)})
        elif p.kind == "tool_result":
            block: dict[str, Any] = {"type": "tool_result", "tool_use_id": p.call_id, "content": p.text}
            if p.is_error:
                block["is_error"] = True
            out.append(block)
    return out


def _usage_out(u: Usage) -> dict[str, Any]:
    return {"input_tokens": u.input_tokens, "cache_creation_input_tokens": u.cache_write_tokens,
            "cache_read_input_tokens": u.cache_read_tokens, "output_tokens": u.output_tokens}


class MessagesCodec:
    name = NAME

    def decode_request(self, body: dict[str, Any]) -> Request:
        req = Request()
        system = [text_of_blocks(body.get("system"))]
        names: dict[str, str] = {}
        for m in body.get("messages") or ():
            if not isinstance(m, dict):
                continue
            role = m.get("role")
            if role == "system":  # Claude Code's mid-conversation reminders: the other protocols keep them as system text
                system.append(text_of_blocks(m.get("content")))
                continue
            parts = _blocks_in(m.get("content"), names)
            if parts and role in ("user", "assistant"):
                if req.turns and req.turns[-1].role == role:
                    req.turns[-1].parts.extend(parts)
                else:
                    req.turns.append(Turn(role, parts))
        req.system = "\n\n".join(s for s in system if s)
        for t in body.get("tools") or ():
            t = as_dict(t)
            if t.get("name") and t.get("type") in (None, "custom"):
                req.tools.append(Tool(str(t["name"]), str(t.get("description") or ""),
                                      as_dict(t.get("input_schema")) or {"type": "object", "properties": {}}))
        tc = as_dict(body.get("tool_choice"))
        kind = tc.get("type")
        req.tool_choice = ({"auto": "auto", "any": "required", "none": "none"}.get(str(kind))
                           if kind != "tool" else str(tc.get("name") or "required"))
        t = body.get("temperature")
        req.temperature = float(t) if isinstance(t, (int, float)) and not isinstance(t, bool) else None
        p = body.get("top_p")
        req.top_p = float(p) if isinstance(p, (int, float)) and not isinstance(p, bool) else None
        stops = body.get("stop_sequences")
        req.stop = [s for s in stops if isinstance(s, str)] if isinstance(stops, list) else []
        return req

    def encode_request(self, req: Request, model: str, max_tokens: int, stream: bool) -> dict[str, Any]:
        msgs = [{"role": t.role, "content": _blocks_out(t.parts)} for t in req.turns]
        out: dict[str, Any] = {"model": model, "max_tokens": max_tokens, "messages": [m for m in msgs if m["content"]]}
        if req.system:
            out["system"] = req.system
        if req.tools and req.tool_choice != "none":
            out["tools"] = [{"name": t.name, "description": t.description, "input_schema": t.schema} for t in req.tools]
            if req.tool_choice == "required":
                out["tool_choice"] = {"type": "any"}
            elif req.tool_choice == "auto":
                out["tool_choice"] = {"type": "auto"}
            elif req.tool_choice is not None:
                out["tool_choice"] = {"type": "tool", "name": req.tool_choice}
        if req.temperature is not None:
            out["temperature"] = min(req.temperature, 1.0)
        if req.top_p is not None:
            out["top_p"] = req.top_p
        if req.stop:
            out["stop_sequences"] = req.stop
        if stream:
            out["stream"] = True
        return out

    def upstream_path(self, model: str, stream: bool) -> str:
        return "/v1/messages"

    def upstream_headers(self) -> dict[str, str]:
        return {"anthropic-version": API_VERSION}

    def decode_response(self, body: Any, usage: Usage | None = None) -> Response:
        b = as_dict(body)
        parts = _blocks_in(b.get("content"), {})
        return Response(str(b.get("id") or new_id("msg_")), str(b.get("model") or ""), parts,
                        _STOP_IN.get(str(b.get("stop_reason")), "end"),
                        usage or anthropic.usage_of(b.get("usage")) or Usage())

    def encode_response(self, resp: Response) -> dict[str, Any]:
        rid = resp.id if resp.id.startswith("msg_") else "msg_" + resp.id
        return {"id": rid, "type": "message", "role": "assistant", "model": resp.model,
                "content": _blocks_out(resp.parts), "stop_reason": _STOP_OUT[resp.stop], "stop_sequence": None,
                "usage": _usage_out(resp.usage)}

    def stream_decoder(self) -> "MessagesStreamDecoder":
        return MessagesStreamDecoder()

    def stream_encoder(self, model: str, include_usage: bool) -> "MessagesStreamEncoder":
        return MessagesStreamEncoder(model)

    def error_message(self, body: Any) -> str:
        return str(as_dict(as_dict(body).get("error")).get("message") or "")

    error_body = staticmethod(anthropic.PROTOCOL.error_body)


class MessagesStreamDecoder:
    """Anthropic's named events: tool_use blocks become ToolStart/ToolArgs; thinking blocks are dropped."""

    __slots__ = ("usage", "stop", "tool_of_block", "tools", "dropped_chars")

    def __init__(self) -> None:
        self.dropped_chars = 0
        self.usage: Usage | None = None
        self.stop: Stop = "end"
        self.tool_of_block: dict[int, int] = {}
        self.tools = 0

    def feed(self, ev: SSEEvent) -> list[Event]:
        if ev.data is None or ev.event == "ping":
            return []
        try:
            obj = orjson.loads(ev.data)
        except orjson.JSONDecodeError:
            return []
        if not isinstance(obj, dict):
            return []
        kind = obj.get("type")
        if kind == "content_block_delta":
            delta = as_dict(obj.get("delta"))
            dk = delta.get("type")
            if dk == "text_delta":
                text = delta.get("text")
                return [TextDelta(text)] if isinstance(text, str) else []
            if dk == "thinking_delta" and isinstance(delta.get("thinking"), str):
                self.dropped_chars += len(delta["thinking"])  # not passed on, but written (and billed) all the same
            if dk == "input_json_delta" and delta.get("partial_json"):
                i = self.tool_of_block.get(obj.get("index", -1))  # type: ignore[arg-type]
                return [ToolArgs(i, str(delta["partial_json"]))] if i is not None else []
            return []
        if kind == "content_block_start":
            block = as_dict(obj.get("content_block"))
            if block.get("type") == "tool_use":
                i = self.tools
                self.tools += 1
                self.tool_of_block[obj.get("index", -1)] = i  # type: ignore[index]
                out: list[Event] = [ToolStart(i, str(block.get("id") or new_id("toolu_")), str(block.get("name") or ""))]
                if block.get("input"):
                    out.append(ToolArgs(i, orjson.dumps(block["input"]).decode()))
                return out
            return []
        if kind == "message_start":
            msg = as_dict(obj.get("message"))
            self.usage = anthropic.usage_of(msg.get("usage")) or Usage()
            return [Start(str(msg.get("id") or new_id("msg_")), str(msg.get("model") or ""), self.usage)]
        if kind == "message_delta":
            u = as_dict(obj.get("usage"))
            if self.usage is None:
                self.usage = Usage()
            anthropic._merge(self.usage, u)
            sr = as_dict(obj.get("delta")).get("stop_reason")
            if isinstance(sr, str):
                self.stop = _STOP_IN.get(sr, "end")
            return []
        if kind == "message_stop":
            return [Finish(self.stop, self.usage or Usage())]
        if kind == "error" or ev.event == "error":
            err = as_dict(obj.get("error"))
            etype = str(err.get("type") or "api_error")
            return [Failure(anthropic._STATUS_OF_TYPE.get(etype, 500), str(err.get("message") or "")[:300], etype)]
        return []


def _event(name: str, obj: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(obj) + b"\n\n"


class MessagesStreamEncoder:
    """Canonical events as Anthropic's event sequence; text and tool calls each get their own block.

    A delta's bytes around its text are made once per block (``delta_head``), so a text delta is
    one ``orjson.dumps`` of its text between them (the same JSON as building the event's dict).
    """

    __slots__ = ("model", "block", "open_kind", "started", "delta_head")

    def __init__(self, model: str) -> None:
        self.model = model
        self.block = -1
        self.open_kind: str | None = None
        self.started = False
        self.delta_head = b""
        """``content_block_delta`` of the open block up to its delta's type."""

    def _start(self, usage: Usage | None, rid: str | None = None) -> bytes:
        self.started = True
        u = _usage_out(usage or Usage())
        u["output_tokens"] = max(1, u["output_tokens"])
        return _event("message_start", {"type": "message_start", "message": {
            "id": rid or new_id("msg_"), "type": "message", "role": "assistant", "model": self.model, "content": [],
            "stop_reason": None, "stop_sequence": None, "usage": u}})

    def _close(self) -> bytes:
        if self.open_kind is None:
            return b""
        self.open_kind = None
        return _event("content_block_stop", {"type": "content_block_stop", "index": self.block})

    def _open(self, block: dict[str, Any]) -> bytes:
        out = self._close()
        self.block += 1
        self.open_kind = block["type"]
        self.delta_head = (b'event: content_block_delta\ndata: {"type":"content_block_delta","index":'
                           + str(self.block).encode() + b',"delta":{"type":')
        return out + _event("content_block_start", {"type": "content_block_start", "index": self.block,
                                                    "content_block": block})

    def encode(self, ev: Event) -> bytes:
        out = b"" if self.started or isinstance(ev, Start) else self._start(None)
        if isinstance(ev, TextDelta):
            if self.open_kind != "text":
                out += self._open({"type": "text", "text": ""})
            return out + self.delta_head + b'"text_delta","text":' + orjson.dumps(ev.text) + b"}}\n\n"
        if isinstance(ev, ToolStart):
            return out + self._open({"type": "tool_use", "id": ev.call_id, "name": ev.name, "input": {}})
        if isinstance(ev, ToolArgs):
            return out + self.delta_head + b'"input_json_delta","partial_json":' + orjson.dumps(ev.json) + b"}}\n\n"
        if isinstance(ev, Start):
            rid = ev.id if ev.id.startswith("msg_") else "msg_" + ev.id
            return self._start(ev.usage, rid)
        if isinstance(ev, Finish):
            if self.block < 0:
                out += self._open({"type": "text", "text": ""})
            out += self._close()
            out += _event("message_delta", {"type": "message_delta",
                                            "delta": {"stop_reason": _STOP_OUT[ev.stop], "stop_sequence": None},
                                            "usage": _usage_out(ev.usage)})
            return out + _event("message_stop", {"type": "message_stop"})
        return out


CODEC = MessagesCodec()
