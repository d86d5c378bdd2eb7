"""The OpenAI Responses API (Codex's protocol) as a caller of the canonical form.

Caller-only: a provider with ``protocol = "openai"`` is spoken to in chat completions, so a
Responses call to an OpenAI-protocol provider passes through untranslated, as it always did;
to an Anthropic or Gemini provider it is translated here.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from agentdeck.pricing import Usage
from agentdeck.wire import openai_errors
from agentdeck.wire.base import as_dict
from agentdeck.wire.translate.canonical import (Event, Finish, Part, Request, Response, Start, TextDelta, Tool,
                                                ToolArgs, ToolStart, Turn)
from agentdeck.wire.translate.common import new_id, parse_data_url, text_of_blocks

NAME = "openai"
"""The protocol's name, as in ``x-agentdeck-translated: openai->anthropic``."""


def _content_parts(content: Any) -> list[Part]:
    if isinstance(content, str):
        return [Part("text", text=content)] if content else []
    out: list[Part] = []
    for c in content if isinstance(content, list) else ():
        if not isinstance(c, dict):
            continue
        kind = c.get("type")
        if kind in ("input_text", "output_text", "text") and isinstance(c.get("text"), str):
            out.append(Part("text", text=c["text"]))
        elif kind == "input_image":
            url = str(c.get("image_url") or "")
            parsed = parse_data_url(url)
            out.append(Part("image", media_type=parsed[0], data=parsed[1]) if parsed else Part("image", url=url))
    return out


def _append(turns: list[Turn], role: Any, parts: list[Part]) -> None:
    if not parts:
        return
    if turns and turns[-1].role == role:
        turns[-1].parts.extend(parts)
    else:
        turns.append(Turn(role, parts))


def _usage_out(u: Usage) -> dict[str, Any]:
    total_in = u.input_tokens + u.cache_read_tokens + u.cache_write_tokens
    return {"input_tokens": total_in, "input_tokens_details": {"cached_tokens": u.cache_read_tokens},
            "output_tokens": u.output_tokens, "output_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
            "total_tokens": total_in + u.output_tokens}


def _message_item(item_id: str, text: str, status: str = "completed") -> dict[str, Any]:
    return {"id": item_id, "type": "message", "status": status, "role": "assistant",
            "content": [{"type": "output_text", "text": text, "annotations": []}] if status == "completed" else []}


def _call_item(item_id: str, call_id: str, name: str, arguments: str, status: str = "completed") -> dict[str, Any]:
    return {"id": item_id, "type": "function_call", "status": status, "call_id": call_id, "name": name,
            "arguments": arguments}


def _response_obj(rid: str, model: str, created: int, status: str, output: list[dict[str, Any]],
                  usage: Usage | None, truncated: bool = False) -> dict[str, Any]:
    return {"id": rid, "object": "response", "created_at": created, "status": status, "model": model,
            "output": output, "usage": _usage_out(usage) if usage is not None else None, "error": None,
            "incomplete_details": {"reason": "max_output_tokens"} if truncated else None, "instructions": None,
            "metadata": {}, "parallel_tool_calls": True, "temperature": None, "tool_choice": "auto", "tools": [],
            "top_p": None}


class ResponsesCodec:
    name = NAME

    def decode_request(self, body: dict[str, Any]) -> Request:
        req = Request()
        system = [text_of_blocks(body.get("instructions"))]
        names: dict[str, str] = {}
        inp = body.get("input")
        if isinstance(inp, str):
            _append(req.turns, "user", [Part("text", text=inp)])
        for item in inp if isinstance(inp, list) else ():
            if not isinstance(item, dict):
                continue
            kind = item.get("type", "message")
            if kind == "message":
                role = item.get("role")
                if role in ("system", "developer"):
                    system.append(text_of_blocks(item.get("content")) if isinstance(item.get("content"), str)
                                  else "".join(p.text for p in _content_parts(item.get("content")) if p.kind == "text"))
                elif role in ("user", "assistant"):
                    _append(req.turns, role, _content_parts(item.get("content")))
            elif kind == "function_call":
                cid = str(item.get("call_id") or new_id("call_"))
                names[cid] = str(item.get("name") or "")
                _append(req.turns, "assistant", [Part("tool_call", call_id=cid, name=names[cid],
                                                      arguments=str(item.get("arguments") or "{}"))])
            elif kind == "function_call_output":
                cid = str(item.get("call_id") or "")
                out = item.get("output")
                text = out if isinstance(out, str) else "".join(p.text for p in _content_parts(out) if p.kind == "text")
                _append(req.turns, "user", [Part("tool_result", call_id=cid, name=names.get(cid, ""), text=text)])
        req.system = "\n\n".join(s for s in system if s)
        for t in body.get("tools") or ():
            t = as_dict(t)
            if t.get("type") == "function" and t.get("name"):
                req.tools.append(Tool(str(t["name"]), str(t.get("description") or ""),
                                      as_dict(t.get("parameters")) or {"type": "object", "properties": {}}))
        tc = body.get("tool_choice")
        if isinstance(tc, str):
            req.tool_choice = tc
        elif isinstance(tc, dict) and tc.get("name"):
            req.tool_choice = str(tc["name"])
        for key in ("temperature", "top_p"):
            v = body.get(key)
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                setattr(req, key, float(v))
        fmt = as_dict(as_dict(body.get("text")).get("format"))
        if fmt.get("type") == "json_schema":
            req.json_schema = as_dict(fmt.get("schema"))
        elif fmt.get("type") == "json_object":
            req.json_schema = {}
        return req

    def encode_response(self, resp: Response) -> dict[str, Any]:
        output: list[dict[str, Any]] = []
        text = "".join(p.text for p in resp.parts if p.kind == "text")
        if text:
            output.append(_message_item(new_id("msg_"), text))
        for p in resp.parts:
            if p.kind == "tool_call":
                output.append(_call_item(new_id("fc_"), p.call_id, p.name, p.arguments))
        truncated = resp.stop == "max_tokens"
        rid = resp.id if resp.id.startswith("resp_") else "resp_" + resp.id
        return _response_obj(rid, resp.model, int(time.time()), "incomplete" if truncated else "completed", output,
                             resp.usage, truncated)

    def stream_encoder(self, model: str, include_usage: bool) -> "ResponsesStreamEncoder":
        return ResponsesStreamEncoder(model)

    error_body = staticmethod(openai_errors.error_body)


class ResponsesStreamEncoder:
    """Canonical events as the Responses API's named events, each with its ``sequence_number``.

    A text delta's bytes around its sequence number and text are made once per message item
    (``delta_mid``), so a delta is one ``orjson.dumps`` of its text (the same JSON as ``_ev``)."""

    __slots__ = ("model", "id", "created", "seq", "output", "open", "text", "args", "delta_mid")

    def __init__(self, model: str) -> None:
        self.model = model
        self.id = new_id("resp_")
        self.created = int(time.time())
        self.seq = 0
        self.output: list[dict[str, Any]] = []
        self.open: dict[str, Any] | None = None
        self.text: list[str] = []
        self.args: list[str] = []
        self.delta_mid = b""
        """``response.output_text.delta`` of the open message from after its sequence number to its delta."""

    def _ev(self, kind: str, data: dict[str, Any]) -> bytes:
        data = {"type": kind, "sequence_number": self.seq, **data}
        self.seq += 1
        return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"

    def _close(self) -> bytes:
        item = self.open
        if item is None:
            return b""
        self.open = None
        i = len(self.output)
        if item["type"] == "message":
            text = "".join(self.text)
            done = _message_item(item["id"], text)
            out = (self._ev("response.output_text.done", {"item_id": item["id"], "output_index": i, "content_index": 0,
                                                          "text": text})
                   + self._ev("response.content_part.done", {"item_id": item["id"], "output_index": i,
                                                             "content_index": 0, "part": done["content"][0]}))
        else:
            args = "".join(self.args)
            done = _call_item(item["id"], item["call_id"], item["name"], args)
            out = self._ev("response.function_call_arguments.done", {"item_id": item["id"], "output_index": i,
                                                                     "arguments": args})
        self.output.append(done)
        return out + self._ev("response.output_item.done", {"output_index": i, "item": done})

    def encode(self, ev: Event) -> bytes:
        if isinstance(ev, Start):
            pending = _response_obj(self.id, self.model, self.created, "in_progress", [], None)
            return (self._ev("response.created", {"response": pending})
                    + self._ev("response.in_progress", {"response": pending}))
        if isinstance(ev, TextDelta):
            out = b""
            if self.open is None or self.open["type"] != "message":
                out = self._close()
                self.open, self.text = _message_item(new_id("msg_"), "", "in_progress"), []
                i = len(self.output)
                out += self._ev("response.output_item.added", {"output_index": i, "item": self.open})
                out += self._ev("response.content_part.added", {"item_id": self.open["id"], "output_index": i,
                                                                "content_index": 0, "part": {
                                                                    "type": "output_text", "text": "", "annotations": []}})
                self.delta_mid = (b',"item_id":' + orjson.dumps(self.open["id"]) + b',"output_index":' + str(i).encode()
                                  + b',"content_index":0,"delta":')
            self.text.append(ev.text)
            seq = self.seq
            self.seq += 1
            return (out + b'event: response.output_text.delta\ndata: {"type":"response.output_text.delta","sequence_number":'
                    + str(seq).encode() + self.delta_mid + orjson.dumps(ev.text) + b"}\n\n")
        if isinstance(ev, ToolStart):
            out = self._close()
            self.open, self.args = _call_item(new_id("fc_"), ev.call_id, ev.name, "", "in_progress"), []
            return out + self._ev("response.output_item.added", {"output_index": len(self.output), "item": self.open})
        if isinstance(ev, ToolArgs) and self.open is not None:
            self.args.append(ev.json)
            return self._ev("response.function_call_arguments.delta", {"item_id": self.open["id"],
                                                                       "output_index": len(self.output), "delta": ev.json})
        if isinstance(ev, Finish):
            out = self._close()
            truncated = ev.stop == "max_tokens"
            final = _response_obj(self.id, self.model, self.created, "incomplete" if truncated else "completed",
                                  self.output, ev.usage, truncated)
            return out + self._ev("response.incomplete" if truncated else "response.completed", {"response": final})
        return b""


CODEC = ResponsesCodec()
