"""OpenAI chat completions to and from the canonical form."""

from __future__ import annotations

import time
from typing import Any

import orjson

from agentdeck.pricing import Usage
from agentdeck.wire import openai_chat, openai_errors
from agentdeck.wire.base import as_dict
from agentdeck.wire.sse import SSEEvent
from agentdeck.wire.translate.canonical import (Event, Failure, Finish, Part, Request, Response, Start, Stop, TextDelta,
                                                Tool, ToolArgs, ToolStart, Turn, total_input)
from agentdeck.wire.translate.common import data_url, new_id, parse_data_url, text_of_blocks

NAME = "openai"
_STOP_IN: dict[str, Stop] = {"stop": "end", "length": "max_tokens", "tool_calls": "tool_use", "function_call": "tool_use",
                             "content_filter": "content_filter"}
_STOP_OUT: dict[str, str] = {"end": "stop", "stop_sequence": "stop", "max_tokens": "length", "tool_use": "tool_calls",
                             "content_filter": "content_filter"}


def _content_parts(content: Any) -> list[Part]:
    if isinstance(content, str):
        return [Part("text", text=content)] if content else []
    out: list[Part] = []
    if isinstance(content, list):
        for c in content:
            if not isinstance(c, dict):
                continue
            kind = c.get("type")
            if kind in ("text", "input_text", "output_text") and isinstance(c.get("text"), str):
                out.append(Part("text", text=c["text"]))
            elif kind == "image_url":
                url = str(as_dict(c.get("image_url")).get("url") or "")
                parsed = parse_data_url(url)
                out.append(Part("image", media_type=parsed[0], data=parsed[1]) if parsed else Part("image", url=url))
    return out


def _usage_out(u: Usage) -> dict[str, Any]:
    prompt = total_input(u)
    return {"prompt_tokens": prompt, "completion_tokens": u.output_tokens, "total_tokens": prompt + u.output_tokens,
            "prompt_tokens_details": {"cached_tokens": u.cache_read_tokens},
            "completion_tokens_details": {"reasoning_tokens": u.reasoning_tokens}}


class ChatCodec:
    name = NAME

    # -- requests --------------------------------------------------------------------------
    def decode_request(self, body: dict[str, Any]) -> Request:
        req = Request()
        system: list[str] = []
        names: dict[str, str] = {}
        for m in body.get("messages") or ():
            if not isinstance(m, dict):
                continue
            role = m.get("role")
            if role in ("system", "developer"):
                system.append(text_of_blocks(m.get("content")))
            elif role == "user":
                _append(req.turns, "user", _content_parts(m.get("content")))
            elif role == "assistant":
                parts = _content_parts(m.get("content"))
                for tc in m.get("tool_calls") or ():
                    fn = as_dict(as_dict(tc).get("function"))
                    cid = str(as_dict(tc).get("id") or new_id("call_"))
                    names[cid] = str(fn.get("name") or "")
                    parts.append(Part("tool_call", call_id=cid, name=names[cid], arguments=str(fn.get("arguments") or "{}")))
                _append(req.turns, "assistant", parts)
            elif role == "tool":
                cid = str(m.get("tool_call_id") or "")
                _append(req.turns, "user", [Part("tool_result", call_id=cid, name=names.get(cid, ""),
                                                 text=text_of_blocks(m.get("content")))])
        req.system = "\n\n".join(s for s in system if s)
        for t in body.get("tools") or ():
            fn = as_dict(as_dict(t).get("function"))
            if as_dict(t).get("type", "function") == "function" and fn.get("name"):
                req.tools.append(Tool(str(fn["name"]), str(fn.get("description") or ""),
                                      as_dict(fn.get("parameters")) or {"type": "object", "properties": {}}))
        tc = body.get("tool_choice")
        if isinstance(tc, str):
            req.tool_choice = tc
        elif isinstance(tc, dict):
            req.tool_choice = str(as_dict(tc.get("function")).get("name") or "required")
        req.temperature = _num(body.get("temperature"))
        req.top_p = _num(body.get("top_p"))
        stop = body.get("stop")
        req.stop = [stop] if isinstance(stop, str) else [s for s in stop if isinstance(s, str)] if isinstance(stop, list) else []
        rf = as_dict(body.get("response_format"))
        if rf.get("type") == "json_schema":
            req.json_schema = as_dict(as_dict(rf.get("json_schema")).get("schema"))
        elif rf.get("type") == "json_object":
            req.json_schema = {}
        return req

    def encode_request(self, req: Request, model: str, max_tokens: int, stream: bool) -> dict[str, Any]:
        msgs: list[dict[str, Any]] = []
        if req.system:
            msgs.append({"role": "system", "content": req.system})
        for turn in req.turns:
            if turn.role == "assistant":
                text = "".join(p.text for p in turn.parts if p.kind == "text")
                calls = [{"id": p.call_id, "type": "function", "function": {"name": p.name, "arguments": p.arguments or "{}"}}
                         for p in turn.parts if p.kind == "tool_call"]
                m: dict[str, Any] = {"role": "assistant", "content": text or None}
                if calls:
                    m["tool_calls"] = calls
                msgs.append(m)
                continue
            content: list[dict[str, Any]] = []
            for p in turn.parts:
                if p.kind == "tool_result":
                    msgs.append({"role": "tool", "tool_call_id": p.call_id, "content": p.text})
                elif p.kind == "text":
                    content.append({"type": "text", "text": p.text})
                elif p.kind == "image":
                    content.append({"type": "image_url", "image_url": {"url": p.url or data_url(p.media_type, p.data)}})
            if content:
                msgs.append({"role": "user", "content": content})
        out: dict[str, Any] = {"model": model, "messages": msgs, "max_completion_tokens": max_tokens}
        if req.tools:
            out["tools"] = [{"type": "function", "function": {"name": t.name, "description": t.description,
                                                              "parameters": t.schema}} for t in req.tools]
        if req.tool_choice is not None:
            out["tool_choice"] = (req.tool_choice if req.tool_choice in ("auto", "none", "required")
                                  else {"type": "function", "function": {"name": req.tool_choice}})
        if req.temperature is not None:
            out["temperature"] = req.temperature
        if req.top_p is not None:
            out["top_p"] = req.top_p
        if req.stop:
            out["stop"] = req.stop[:4]
        if req.json_schema is not None:
            out["response_format"] = ({"type": "json_schema", "json_schema": {"name": "answer", "schema": req.json_schema}}
                                      if req.json_schema else {"type": "json_object"})
        if stream:
            out["stream"] = True
            out["stream_options"] = {"include_usage": True}
        return out

    def upstream_path(self, model: str, stream: bool) -> str:
        return "/v1/chat/completions"

    def upstream_headers(self) -> dict[str, str]:
        return {}

    # -- answers ---------------------------------------------------------------------------
    def decode_response(self, body: Any, usage: Usage | None = None) -> Response:
        b = as_dict(body)
        choice = as_dict((b.get("choices") or [{}])[0])
        msg = as_dict(choice.get("message"))
        parts = _content_parts(msg.get("content"))
        for tc in msg.get("tool_calls") or ():
            fn = as_dict(as_dict(tc).get("function"))
            parts.append(Part("tool_call", call_id=str(as_dict(tc).get("id") or new_id("call_")),
                              name=str(fn.get("name") or ""), arguments=str(fn.get("arguments") or "{}")))
        stop = _STOP_IN.get(str(choice.get("finish_reason")), "end")
        return Response(str(b.get("id") or new_id("chatcmpl-")), str(b.get("model") or ""), parts, stop,
                        usage or openai_chat.usage_of(b.get("usage")) or Usage())

    def encode_response(self, resp: Response) -> dict[str, Any]:
        text = "".join(p.text for p in resp.parts if p.kind == "text")
        calls = [{"id": p.call_id, "type": "function", "function": {"name": p.name, "arguments": p.arguments}}
                 for p in resp.parts if p.kind == "tool_call"]
        msg: dict[str, Any] = {"role": "assistant", "content": text or None, "refusal": None}
        if calls:
            msg["tool_calls"] = calls
        return {"id": _chat_id(resp.id), "object": "chat.completion", "created": int(time.time()), "model": resp.model,
                "choices": [{"index": 0, "message": msg, "logprobs": None, "finish_reason": _STOP_OUT[resp.stop]}],
                "usage": _usage_out(resp.usage)}

    def stream_decoder(self) -> "ChatStreamDecoder":
        return ChatStreamDecoder()

    def stream_encoder(self, model: str, include_usage: bool) -> "ChatStreamEncoder":
        return ChatStreamEncoder(model, include_usage)

    def error_message(self, body: Any) -> str:
        return str(as_dict(as_dict(body).get("error")).get("message") or "")

    error_body = staticmethod(openai_errors.error_body)


def _chat_id(rid: str) -> str:
    return rid if rid.startswith("chatcmpl-") else "chatcmpl-" + rid


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _append(turns: list[Turn], role: Any, parts: list[Part]) -> None:
    """Consecutive turns of one role become one (tool results after a call, as Anthropic requires)."""
    if not parts:
        return
    if turns and turns[-1].role == role:
        turns[-1].parts.extend(parts)
    else:
        turns.append(Turn(role, parts))


class ChatStreamDecoder:
    """Chat chunks: the finish reason comes in one chunk and usage in a later one, so Finish waits for both."""

    __slots__ = ("started", "stop", "usage", "finished", "calls", "dropped_chars")

    def __init__(self) -> None:
        self.dropped_chars = 0
        self.started = False
        self.stop: Stop | None = None
        self.usage: Usage | None = None
        self.finished = False
        self.calls: dict[int, int] = {}

    def feed(self, ev: SSEEvent) -> list[Event]:
        data = ev.data
        if data is None:
            return []
        if data == b"[DONE]":
            return self._finish()
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError:
            return []
        if not isinstance(obj, dict):
            return []
        if "error" in obj and "choices" not in obj:
            f = openai_errors.failure_of(obj["error"])
            return [Failure(f.status, f.message, f.kind)]
        out: list[Event] = []
        if not self.started:
            self.started = True
            out.append(Start(str(obj.get("id") or new_id("chatcmpl-")), str(obj.get("model") or "")))
        for c in obj.get("choices") or ():
            if not isinstance(c, dict):
                continue
            delta = c.get("delta")
            if isinstance(delta, dict):
                text = delta.get("content")
                if text and isinstance(text, str):
                    out.append(TextDelta(text))
                calls = delta.get("tool_calls")
                if calls:
                    self._tool_calls(calls, out)
            fr = c.get("finish_reason")
            if fr is not None and isinstance(fr, str):
                self.stop = _STOP_IN.get(fr, "end")
        u = obj.get("usage")
        if u is not None and isinstance(u, dict):
            self.usage = openai_chat.usage_of(u)
            if self.stop is not None:
                out.extend(self._finish())
        return out

    def _tool_calls(self, calls: Any, out: list[Event]) -> None:
        for tc in calls if isinstance(calls, list) else ():
            tc = as_dict(tc)
            i = tc.get("index", 0)
            fn = as_dict(tc.get("function"))
            if i not in self.calls:
                self.calls[i] = len(self.calls)
                out.append(ToolStart(self.calls[i], str(tc.get("id") or new_id("call_")), str(fn.get("name") or "")))
            args = fn.get("arguments")
            if isinstance(args, str) and args:
                out.append(ToolArgs(self.calls[i], args))

    def _finish(self) -> list[Event]:
        if self.finished or self.stop is None:
            return []
        self.finished = True
        return [Finish(self.stop, self.usage or Usage())]


def _sse(obj: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(obj) + b"\n\n"


class ChatStreamEncoder:
    """Canonical events as chat.completion.chunk events, then ``[DONE]``.

    Why byte templates: every chunk of a stream repeats the same id, created and model, so the
    bytes around the delta are made once per stream and a text delta is one ``orjson.dumps`` of
    its text between them (the same JSON, key for key, as building each chunk's dict).
    """

    __slots__ = ("model", "include_usage", "id", "created", "head", "tail", "text_head", "text_tail")

    def __init__(self, model: str, include_usage: bool) -> None:
        self.model = model
        self.include_usage = include_usage
        self.id = new_id("chatcmpl-")
        self.created = int(time.time())
        self.head = (b'data: {"id":' + orjson.dumps(self.id) + b',"object":"chat.completion.chunk","created":'
                     + str(self.created).encode() + b',"model":' + orjson.dumps(model)
                     + b',"choices":[{"index":0,"delta":')
        """A chunk up to its delta."""
        self.tail = b"}]" + (b',"usage":null' if include_usage else b"") + b"}\n\n"
        """A chunk after its finish_reason."""
        self.text_head = self.head + b'{"content":'
        self.text_tail = b'},"logprobs":null,"finish_reason":null' + self.tail

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        return (self.head + orjson.dumps(delta) + b',"logprobs":null,"finish_reason":'
                + (b"null" if finish is None else orjson.dumps(finish)) + self.tail)

    def encode(self, ev: Event) -> bytes:
        if isinstance(ev, TextDelta):
            return self.text_head + orjson.dumps(ev.text) + self.text_tail
        if isinstance(ev, ToolArgs):
            return self._chunk({"tool_calls": [{"index": ev.index, "function": {"arguments": ev.json}}]})
        if isinstance(ev, ToolStart):
            return self._chunk({"tool_calls": [{"index": ev.index, "id": ev.call_id, "type": "function",
                                                "function": {"name": ev.name, "arguments": ""}}]})
        if isinstance(ev, Start):
            return self._chunk({"role": "assistant", "content": "", "refusal": None})
        if isinstance(ev, Finish):
            out = self._chunk({}, _STOP_OUT[ev.stop])
            if self.include_usage:
                out += _sse({"id": self.id, "object": "chat.completion.chunk", "created": self.created,
                             "model": self.model, "choices": [], "usage": _usage_out(ev.usage)})
            return out + b"data: [DONE]\n\n"
        return b""


CODEC = ChatCodec()
