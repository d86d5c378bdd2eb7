"""Gemini generateContent to and from the canonical form.

Gemini names a function result by the function's name (its ``id`` is optional), and its
function calls come whole, never in pieces: a call's arguments are one ToolArgs event.
Schemas in Gemini's own dialect (``"type": "OBJECT"``) are lower-cased for the others; the
other way they go as ``parametersJsonSchema``, which takes JSON Schema as it is.
"""

from __future__ import annotations

from typing import Any

import orjson

from agentdeck.pricing import Usage
from agentdeck.wire import gemini
from agentdeck.wire.base import as_dict
from agentdeck.wire.sse import SSEEvent
from agentdeck.wire.translate.canonical import (Event, Failure, Finish, Part, Request, Response, Start, Stop, TextDelta,
                                                Tool, ToolArgs, ToolStart, Turn, total_input)
from agentdeck.wire.translate.common import json_args, new_id

NAME = "gemini"
_STOP_IN: dict[str, Stop] = {"STOP": "end", "MAX_TOKENS": "max_tokens", "SAFETY": "content_filter",
                             "RECITATION": "content_filter", "BLOCKLIST": "content_filter",
                             "PROHIBITED_CONTENT": "content_filter", "SPII": "content_filter"}
_STOP_OUT: dict[str, str] = {"end": "STOP", "stop_sequence": "STOP", "tool_use": "STOP", "max_tokens": "MAX_TOKENS",
                             "content_filter": "SAFETY"}
_MODES = {"AUTO": "auto", "ANY": "required", "NONE": "none", "VALIDATED": "auto"}


def _lower_types(schema: Any) -> Any:
    """Gemini's OpenAPI-style schema (``"type": "OBJECT"``) as JSON Schema (``"object"``)."""
    if isinstance(schema, dict):
        return {k: (v.lower() if k == "type" and isinstance(v, str) else _lower_types(v)) for k, v in schema.items()}
    if isinstance(schema, list):
        return [_lower_types(v) for v in schema]
    return schema


def _parts_in(parts: Any, calls: list[str]) -> list[Part]:
    """``calls`` collects the ids given to function calls, so the results that follow can name them.

    Nested objects may come in snake_case (the google-genai SDK sends ``inline_data.mime_type``);
    Google's JSON parser takes both spellings, so this does too."""
    out: list[Part] = []
    for p in parts if isinstance(parts, list) else ():
        if not isinstance(p, dict) or p.get("thought") is True:
            continue
        if isinstance(p.get("text"), str):
            if p["text"]:
                out.append(Part("text", text=p["text"]))
        elif "inlineData" in p or "inline_data" in p:
            d = as_dict(p.get("inlineData") or p.get("inline_data"))
            data = str(d.get("data") or "").replace("-", "+").replace("_", "/")  # the SDK sends URL-safe base64
            out.append(Part("image", media_type=str(d.get("mimeType") or d.get("mime_type") or ""), data=data))
        elif "fileData" in p or "file_data" in p:
            d = as_dict(p.get("fileData") or p.get("file_data"))
            out.append(Part("image", media_type=str(d.get("mimeType") or d.get("mime_type") or ""),
                            url=str(d.get("fileUri") or d.get("file_uri") or "")))
        elif "functionCall" in p:
            fc = as_dict(p["functionCall"])
            cid = str(fc.get("id") or new_id("call_"))
            calls.append(cid)
            out.append(Part("tool_call", call_id=cid, name=str(fc.get("name") or ""),
                            arguments=orjson.dumps(fc.get("args") or {}).decode()))
        elif "functionResponse" in p:
            fr = as_dict(p["functionResponse"])
            name = str(fr.get("name") or "")
            cid = str(fr.get("id") or "") or (calls.pop(0) if calls else new_id("call_"))
            resp = fr.get("response")
            text = resp["result"] if isinstance(resp, dict) and isinstance(resp.get("result"), str) and len(resp) == 1 \
                else orjson.dumps(resp if resp is not None else {}).decode()
            out.append(Part("tool_result", call_id=cid, name=name, text=text))
    return out


def _parts_out(parts: list[Part], names: dict[str, str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for p in parts:
        if p.kind == "text":
            if p.text:
                out.append({"text": p.text})
        elif p.kind == "image":
            out.append({"fileData": {"mimeType": p.media_type or "image/jpeg", "fileUri": p.url}} if p.url else
                       {"inlineData": {"mimeType": p.media_type, "data": p.data}})
        elif p.kind == "tool_call":
            names[p.call_id] = p.name
            out.append({"functionCall": {"name": p.name, "args": json_args(p.arguments)}})
        elif p.kind == "tool_result":
            try:
                result = orjson.loads(p.text)
            except orjson.JSONDecodeError:
                result = p.text
            resp = result if isinstance(result, dict) else {"result": result}
            out.append({"functionResponse": {"name": p.name or names.get(p.call_id, ""), "response": resp}})
    return out


def _usage_out(u: Usage) -> dict[str, Any]:
    prompt = total_input(u)
    out: dict[str, Any] = {"promptTokenCount": prompt, "candidatesTokenCount": u.output_tokens - u.reasoning_tokens,
                           "totalTokenCount": prompt + u.output_tokens}
    if u.reasoning_tokens:
        out["thoughtsTokenCount"] = u.reasoning_tokens
    if u.cache_read_tokens:
        out["cachedContentTokenCount"] = u.cache_read_tokens
    return out


class GenerateCodec:
    name = NAME

    def decode_request(self, body: dict[str, Any]) -> Request:
        req = Request()
        si = body.get("systemInstruction")
        if isinstance(si, str):
            req.system = si
        else:
            req.system = "".join(p["text"] for p in as_dict(si).get("parts") or () if isinstance(p, dict)
                                 and isinstance(p.get("text"), str))
        calls: list[str] = []
        for c in body.get("contents") or ():
            if not isinstance(c, dict):
                continue
            role = "assistant" if c.get("role") == "model" else "user"
            parts = _parts_in(c.get("parts"), calls)
            if not parts:
                continue
            if req.turns and req.turns[-1].role == role:
                req.turns[-1].parts.extend(parts)
            else:
                req.turns.append(Turn(role, parts))
        for t in body.get("tools") or ():
            for fd in as_dict(t).get("functionDeclarations") or ():
                fd = as_dict(fd)
                if fd.get("name"):
                    schema = fd.get("parametersJsonSchema") or _lower_types(fd.get("parameters"))
                    req.tools.append(Tool(str(fd["name"]), str(fd.get("description") or ""),
                                          as_dict(schema) or {"type": "object", "properties": {}}))
        fcc = as_dict(as_dict(body.get("toolConfig")).get("functionCallingConfig"))
        mode = fcc.get("mode")
        if isinstance(mode, str):
            allowed = fcc.get("allowedFunctionNames")
            req.tool_choice = (str(allowed[0]) if mode == "ANY" and isinstance(allowed, list) and len(allowed) == 1
                               else _MODES.get(mode))
        gc = as_dict(body.get("generationConfig"))
        for key, attr in (("temperature", "temperature"), ("topP", "top_p")):
            v = gc.get(key)
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                setattr(req, attr, float(v))
        stops = gc.get("stopSequences")
        req.stop = [s for s in stops if isinstance(s, str)] if isinstance(stops, list) else []
        if gc.get("responseMimeType") == "application/json":
            schema = gc.get("responseJsonSchema") or _lower_types(gc.get("responseSchema"))
            req.json_schema = as_dict(schema)
        return req

    def encode_request(self, req: Request, model: str, max_tokens: int, stream: bool) -> dict[str, Any]:
        names: dict[str, str] = {}
        contents = [{"role": "model" if t.role == "assistant" else "user", "parts": _parts_out(t.parts, names)}
                    for t in req.turns]
        out: dict[str, Any] = {"contents": [c for c in contents if c["parts"]]}
        if req.system:
            out["systemInstruction"] = {"parts": [{"text": req.system}]}
        if req.tools:
            out["tools"] = [{"functionDeclarations": [{"name": t.name, "description": t.description,
                                                       "parametersJsonSchema": t.schema} for t in req.tools]}]
        if req.tool_choice is not None:
            mode = {"auto": "AUTO", "none": "NONE", "required": "ANY"}.get(req.tool_choice)
            fcc: dict[str, Any] = {"mode": mode} if mode else {"mode": "ANY", "allowedFunctionNames": [req.tool_choice]}
            out["toolConfig"] = {"functionCallingConfig": fcc}
        gc: dict[str, Any] = {"maxOutputTokens": max_tokens}
        if req.temperature is not None:
            gc["temperature"] = req.temperature
        if req.top_p is not None:
            gc["topP"] = req.top_p
        if req.stop:
            gc["stopSequences"] = req.stop[:5]
        if req.json_schema is not None:
            gc["responseMimeType"] = "application/json"
            if req.json_schema:
                gc["responseJsonSchema"] = req.json_schema
        out["generationConfig"] = gc
        return out

    def upstream_path(self, model: str, stream: bool) -> str:
        return gemini.upstream_path(model, stream)

    def upstream_headers(self) -> dict[str, str]:
        return {}

    def decode_response(self, body: Any, usage: Usage | None = None) -> Response:
        b = as_dict(body)
        cand = as_dict((b.get("candidates") or [{}])[0])
        parts = _parts_in(as_dict(cand.get("content")).get("parts"), [])
        stop = _STOP_IN.get(str(cand.get("finishReason")), "end")
        if stop == "end" and any(p.kind == "tool_call" for p in parts):
            stop = "tool_use"
        return Response(str(b.get("responseId") or new_id("")), str(b.get("modelVersion") or ""), parts, stop,
                        usage or gemini.usage_of(b.get("usageMetadata")) or Usage())

    def encode_response(self, resp: Response) -> dict[str, Any]:
        return {"candidates": [{"content": {"role": "model", "parts": _parts_out(resp.parts, {}) or [{"text": ""}]},
                                "finishReason": _STOP_OUT[resp.stop], "index": 0}],
                "usageMetadata": _usage_out(resp.usage), "modelVersion": resp.model, "responseId": resp.id}

    def stream_decoder(self) -> "GenerateStreamDecoder":
        return GenerateStreamDecoder()

    def stream_encoder(self, model: str, include_usage: bool) -> "GenerateStreamEncoder":
        return GenerateStreamEncoder(model)

    def error_message(self, body: Any) -> str:
        return str(as_dict(as_dict(body).get("error")).get("message") or "")

    error_body = staticmethod(gemini.error_body)

    # -- count_tokens (``canonical.TokenCounter``) -------------------------------------------
    def count_path(self, model: str) -> str:
        return gemini.UPSTREAM_PREFIX + model + ":countTokens"

    def encode_count_request(self, req: Request, model: str) -> dict[str, Any]:
        """A whole ``generateContentRequest``, so the system instruction and tools are counted too
        (a bare ``contents`` would count the turns only)."""
        body = self.encode_request(req, model, 1, False)
        del body["generationConfig"]
        return {"generateContentRequest": {"model": "models/" + model, **body}}

    def decode_count(self, body: Any) -> int | None:
        n = as_dict(body).get("totalTokens")
        return n if isinstance(n, int) and not isinstance(n, bool) and n >= 0 else None


class GenerateStreamDecoder:
    """Every chunk is a partial answer; the one with a finishReason (and the last usage) ends it."""

    __slots__ = ("started", "tools", "usage", "finished", "dropped_chars")

    def __init__(self) -> None:
        self.dropped_chars = 0
        self.started = False
        self.tools = 0
        self.usage: Usage | None = None
        self.finished = False

    def feed(self, ev: SSEEvent) -> list[Event]:
        if ev.data is None:
            return []
        try:
            obj = orjson.loads(ev.data)
        except orjson.JSONDecodeError:
            return []
        if not isinstance(obj, dict):
            return []
        if "error" in obj and "candidates" not in obj:
            f = gemini.failure_of(obj["error"])
            return [Failure(f.status, f.message, f.kind)]
        out: list[Event] = []
        if not self.started:
            self.started = True
            out.append(Start(str(obj.get("responseId") or new_id("")), str(obj.get("modelVersion") or "")))
        u = obj.get("usageMetadata")
        if isinstance(u, dict):
            self.usage = gemini.usage_of(u)
        finish: str | None = None
        for cand in obj.get("candidates") or ():
            cand = as_dict(cand)
            for part in as_dict(cand.get("content")).get("parts") or ():
                text = part.get("text") if isinstance(part, dict) else None
                if text is not None and isinstance(text, str) and part.get("thought") is not True:
                    if text:  # the common chunk: text only, no Part built
                        out.append(TextDelta(text))
                    continue
                for p in _parts_in([part], []):
                    if p.kind == "tool_call":
                        out.append(ToolStart(self.tools, p.call_id, p.name))
                        out.append(ToolArgs(self.tools, p.arguments))
                        self.tools += 1
            fr = cand.get("finishReason")
            if isinstance(fr, str) and fr:
                finish = fr
        if finish is not None and not self.finished:
            self.finished = True
            stop = _STOP_IN.get(finish, "end")
            if stop == "end" and self.tools:
                stop = "tool_use"
            out.append(Finish(stop, self.usage or Usage()))
        return out


class GenerateStreamEncoder:
    """Canonical events as Gemini chunks; a tool call's chunk waits for its arguments (Gemini sends calls whole).

    A text chunk is a byte template made once per stream with its text dumped in between (the
    same JSON, key for key, as ``_chunk`` builds)."""

    __slots__ = ("model", "id", "call", "args", "text_tail")

    def __init__(self, model: str) -> None:
        self.model = model
        self.id = new_id("")
        self.call: str | None = None
        self.args: list[str] = []
        self.text_tail = (b'}]},"index":0}],"modelVersion":' + orjson.dumps(model) + b',"responseId":'
                          + orjson.dumps(self.id) + b"}\r\n\r\n")

    def _chunk(self, parts: list[dict[str, Any]], finish: str | None = None, usage: Usage | None = None) -> bytes:
        cand: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
        if finish is not None:
            cand["finishReason"] = finish
        obj: dict[str, Any] = {"candidates": [cand], "modelVersion": self.model, "responseId": self.id}
        if usage is not None:
            obj["usageMetadata"] = _usage_out(usage)
        return b"data: " + orjson.dumps(obj) + b"\r\n\r\n"

    def _flush_call(self) -> bytes:
        if self.call is None:
            return b""
        part = {"functionCall": {"name": self.call, "args": json_args("".join(self.args))}}
        self.call, self.args = None, []
        return self._chunk([part])

    def encode(self, ev: Event) -> bytes:
        if isinstance(ev, TextDelta):
            out = b'data: {"candidates":[{"content":{"role":"model","parts":[{"text":' + orjson.dumps(ev.text) + self.text_tail
            return out if self.call is None else self._flush_call() + out
        if isinstance(ev, ToolStart):
            out = self._flush_call()
            self.call = ev.name
            return out
        if isinstance(ev, ToolArgs):
            self.args.append(ev.json)
            return b""
        if isinstance(ev, Finish):
            return self._flush_call() + self._chunk([{"text": ""}], _STOP_OUT[ev.stop], ev.usage)
        return b""


CODEC = GenerateCodec()
