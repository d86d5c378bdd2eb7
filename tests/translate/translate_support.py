"""Helpers for the Gemini and translation tests: a gateway with a Gemini provider (the mock), SDK clients."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from deck_support import ADMIN_TOKEN, GATEWAY_KEY

PROVIDER_KEY_GOOGLE = "AIza-provider-SECRET-eeeeeeeeeeee"
GEMINI_MODELS = ["gemini-*"]


def gemini_provider(url: str, **extra: Any) -> dict[str, Any]:
    return {"protocol": "gemini", "base_url": url, "api_key": PROVIDER_KEY_GOOGLE, "models": list(GEMINI_MODELS),
            "retry": {"backoff_base_s": 0.01, "backoff_max_s": 0.05}, **extra}


def genai_client(gw: Any, api_version: str | None = None) -> Any:
    from google import genai
    from google.genai import types

    opts = types.HttpOptions(base_url=gw.url, retry_options=types.HttpRetryOptions(attempts=1), timeout=20_000,
                             api_version=api_version)
    return genai.Client(api_key=GATEWAY_KEY, http_options=opts)


def admin_get(gw: Any, path: str) -> Any:
    r = httpx.get(gw.url + path, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=10)
    r.raise_for_status()
    return r.json()


def wait_rows(gw: Any, n: int, timeout: float = 5.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        rows = admin_get(gw, f"/admin/requests?limit={max(n, 50)}")["requests"]
        if len(rows) >= n or time.monotonic() > deadline:
            return rows
        time.sleep(0.05)


# -- one adapter per calling protocol, so every direction runs the same scenarios -------------
TOOL = {"name": "lookup", "description": "Look something up.",
        "schema": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]}}
PNG_1PX = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")


def translate_config(url: str) -> dict[str, Any]:
    """Providers of all three protocols on the mock, each serving its own vendor's models; translation on."""
    return {"providers": {"google": gemini_provider(url)}, "routing": {"translate": True}}


class Reply:
    """What a caller got back, read through its own SDK's types."""

    def __init__(self, text: str, tool: tuple[str, str, dict[str, Any]] | None, stop: str, usage: tuple[int, int],
                 headers: Any) -> None:
        self.text, self.tool, self.stop, self.usage, self.headers = text, tool, stop, usage, headers


class AnthropicCaller:
    name = "anthropic"
    stop_tool, stop_end = "tool_use", "end_turn"

    def __init__(self, gw: Any) -> None:
        self.base = gw.url
        import anthropic

        self.sdk = anthropic
        self.client = anthropic.Anthropic(base_url=gw.url, api_key=GATEWAY_KEY, max_retries=0, timeout=20)

    def raw_body(self, model: str, text: str) -> tuple[dict[str, Any], str]:
        return {"model": model, "max_tokens": 100, "messages": [{"role": "user", "content": text}]}, "/v1/messages"

    def ask_raw(self, model: str, text: str, extra: dict[str, Any]) -> None:
        """A plain POST of this protocol's body with ``extra`` fields merged in; it must succeed."""
        body, path = self.raw_body(model, text)
        body.update(extra)
        r = httpx.post(self.base + path.format(model=model), json=body, timeout=20,
                       headers={"authorization": f"Bearer {GATEWAY_KEY}", "x-goog-api-key": GATEWAY_KEY})
        assert r.status_code == 200, r.text

    def user(self, text: str, image: bool = False) -> dict[str, Any]:
        content: list[dict[str, Any]] = [{"type": "text", "text": text}]
        if image:
            content.insert(0, {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG_1PX}})
        return {"role": "user", "content": content}

    def ask(self, model: str, history: list[Any], stream: bool, tools: bool = False) -> Reply:
        kw: dict[str, Any] = {"model": model, "max_tokens": 200, "system": "You are terse.", "messages": history}
        if tools:
            kw["tools"] = [{"name": TOOL["name"], "description": TOOL["description"], "input_schema": TOOL["schema"]}]
        if stream:
            with self.client.messages.stream(**kw) as s:
                events = list(s)
                msg = s.get_final_message()
                headers = s.response.headers
            assert events
        else:
            raw = self.client.messages.with_raw_response.create(**kw)
            msg, headers = raw.parse(), raw.headers
        self.last = msg
        text = "".join(b.text for b in msg.content if b.type == "text")
        calls = [b for b in msg.content if b.type == "tool_use"]
        tool = (calls[0].id, calls[0].name, dict(calls[0].input)) if calls else None
        return Reply(text, tool, str(msg.stop_reason), (msg.usage.input_tokens, msg.usage.output_tokens), headers)

    def after_tool(self, history: list[Any], reply: Reply, result: str) -> list[Any]:
        assert reply.tool is not None
        return [*history, {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in self.last.content]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": reply.tool[0], "content": result}]}]

    def errors(self) -> tuple[type[Exception], type[Exception]]:
        return self.sdk.RateLimitError, self.sdk.BadRequestError


class OpenAICaller:
    name = "openai"
    stop_tool, stop_end = "tool_calls", "stop"

    def __init__(self, gw: Any) -> None:
        self.base = gw.url
        import openai

        self.sdk = openai
        self.client = openai.OpenAI(base_url=gw.url + "/v1", api_key=GATEWAY_KEY, max_retries=0, timeout=20)

    def raw_body(self, model: str, text: str) -> tuple[dict[str, Any], str]:
        return {"model": model, "messages": [{"role": "user", "content": text}]}, "/v1/chat/completions"

    def ask_raw(self, model: str, text: str, extra: dict[str, Any]) -> None:
        """A plain POST of this protocol's body with ``extra`` fields merged in; it must succeed."""
        body, path = self.raw_body(model, text)
        body.update(extra)
        r = httpx.post(self.base + path.format(model=model), json=body, timeout=20,
                       headers={"authorization": f"Bearer {GATEWAY_KEY}", "x-goog-api-key": GATEWAY_KEY})
        assert r.status_code == 200, r.text

    def user(self, text: str, image: bool = False) -> dict[str, Any]:
        content: list[dict[str, Any]] = [{"type": "text", "text": text}]
        if image:
            content.insert(0, {"type": "image_url", "image_url": {"url": "data:image/png;base64," + PNG_1PX}})
        return {"role": "user", "content": content}

    def ask(self, model: str, history: list[Any], stream: bool, tools: bool = False) -> Reply:
        kw: dict[str, Any] = {"model": model, "max_tokens": 200,
                              "messages": [{"role": "system", "content": "You are terse."}, *history]}
        if tools:
            kw["tools"] = [{"type": "function", "function": {"name": TOOL["name"], "description": TOOL["description"],
                                                             "parameters": TOOL["schema"]}}]
        if stream:
            raw = self.client.chat.completions.with_raw_response.create(
                **kw, stream=True, stream_options={"include_usage": True})
            chunks = list(raw.parse())
            headers = raw.headers
            text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
            calls: dict[int, list[str]] = {}
            stop = ""
            for c in chunks:
                for ch in c.choices:
                    stop = ch.finish_reason or stop
                    for tc in ch.delta.tool_calls or ():
                        entry = calls.setdefault(tc.index, ["", "", ""])
                        entry[0] = tc.id or entry[0]
                        entry[1] = (tc.function.name or entry[1]) if tc.function else entry[1]
                        entry[2] += (tc.function.arguments or "") if tc.function else ""
            [usage] = [c.usage for c in chunks if c.usage is not None]
            tool = None
            if calls:
                cid, name, args = calls[0]
                tool = (cid, name, json.loads(args))
            self.last_calls = [{"id": v[0], "type": "function", "function": {"name": v[1], "arguments": v[2]}}
                               for v in calls.values()]
            self.last_text = text
            return Reply(text, tool, stop, (usage.prompt_tokens, usage.completion_tokens), headers)
        raw = self.client.chat.completions.with_raw_response.create(**kw)
        r = raw.parse()
        m = r.choices[0].message
        self.last_calls = [tc.model_dump() for tc in m.tool_calls or ()]
        self.last_text = m.content or ""
        tool = None
        if m.tool_calls:
            tc = m.tool_calls[0]
            tool = (tc.id, tc.function.name, json.loads(tc.function.arguments))
        return Reply(m.content or "", tool, str(r.choices[0].finish_reason),
                     (r.usage.prompt_tokens, r.usage.completion_tokens), raw.headers)

    def after_tool(self, history: list[Any], reply: Reply, result: str) -> list[Any]:
        assert reply.tool is not None
        return [*history, {"role": "assistant", "content": self.last_text or None, "tool_calls": self.last_calls},
                {"role": "tool", "tool_call_id": reply.tool[0], "content": result}]

    def errors(self) -> tuple[type[Exception], type[Exception]]:
        return self.sdk.RateLimitError, self.sdk.BadRequestError


class GeminiCaller:
    name = "gemini"
    stop_tool, stop_end = "STOP", "STOP"

    def __init__(self, gw: Any) -> None:
        self.base = gw.url
        from google.genai import types

        self.types = types
        self.client = genai_client(gw)

    def raw_body(self, model: str, text: str) -> tuple[dict[str, Any], str]:
        return {"contents": [{"role": "user", "parts": [{"text": text}]}]}, "/v1beta/models/{model}:generateContent"

    def ask_raw(self, model: str, text: str, extra: dict[str, Any]) -> None:
        """A plain POST of this protocol's body with ``extra`` fields merged in; it must succeed."""
        body, path = self.raw_body(model, text)
        body.update(extra)
        r = httpx.post(self.base + path.format(model=model), json=body, timeout=20,
                       headers={"authorization": f"Bearer {GATEWAY_KEY}", "x-goog-api-key": GATEWAY_KEY})
        assert r.status_code == 200, r.text

    def user(self, text: str, image: bool = False) -> Any:
        t = self.types
        parts = [t.Part(text=text)]
        if image:
            import base64

            parts.insert(0, t.Part(inline_data=t.Blob(mime_type="image/png", data=base64.b64decode(PNG_1PX))))
        return t.Content(role="user", parts=parts)

    def ask(self, model: str, history: list[Any], stream: bool, tools: bool = False) -> Reply:
        t = self.types
        cfg = t.GenerateContentConfig(system_instruction="You are terse.", max_output_tokens=200,
                                      automatic_function_calling=t.AutomaticFunctionCallingConfig(disable=True))
        if tools:
            cfg.tools = [t.Tool(function_declarations=[t.FunctionDeclaration(
                name=TOOL["name"], description=TOOL["description"], parameters_json_schema=TOOL["schema"])])]
        if stream:
            chunks = list(self.client.models.generate_content_stream(model=model, contents=history, config=cfg))
            parts = [p for c in chunks if c.candidates for p in (c.candidates[0].content.parts or ()) if c.candidates[0].content]
            last = chunks[-1]
            headers = last.sdk_http_response.headers if last.sdk_http_response else {}
        else:
            last = self.client.models.generate_content(model=model, contents=history, config=cfg)
            parts = list(last.candidates[0].content.parts or ())
            headers = last.sdk_http_response.headers
        self.last_parts = parts
        text = "".join(p.text or "" for p in parts)
        calls = [p.function_call for p in parts if p.function_call]
        tool = (calls[0].id or "", calls[0].name, dict(calls[0].args or {})) if calls else None
        u = last.usage_metadata
        return Reply(text, tool, str(last.candidates[0].finish_reason.value), (u.prompt_token_count,
                                                                             u.candidates_token_count), headers)

    def after_tool(self, history: list[Any], reply: Reply, result: str) -> list[Any]:
        t = self.types
        assert reply.tool is not None
        return [*history, t.Content(role="model", parts=self.last_parts),
                t.Content(role="user", parts=[t.Part(function_response=t.FunctionResponse(
                    name=reply.tool[1], response={"result": result}))])]

    def errors(self) -> tuple[type[Exception], type[Exception]]:
        from google.genai import errors

        return errors.ClientError, errors.ClientError


class ResponsesCaller:
    name = "responses"
    stop_tool, stop_end = "completed", "completed"

    def __init__(self, gw: Any) -> None:
        self.base = gw.url
        import openai

        self.sdk = openai
        self.client = openai.OpenAI(base_url=gw.url + "/v1", api_key=GATEWAY_KEY, max_retries=0, timeout=20)

    def raw_body(self, model: str, text: str) -> tuple[dict[str, Any], str]:
        return {"model": model, "input": text}, "/v1/responses"

    def ask_raw(self, model: str, text: str, extra: dict[str, Any]) -> None:
        """A plain POST of this protocol's body with ``extra`` fields merged in; it must succeed."""
        body, path = self.raw_body(model, text)
        body.update(extra)
        r = httpx.post(self.base + path.format(model=model), json=body, timeout=20,
                       headers={"authorization": f"Bearer {GATEWAY_KEY}", "x-goog-api-key": GATEWAY_KEY})
        assert r.status_code == 200, r.text

    def user(self, text: str, image: bool = False) -> dict[str, Any]:
        content: list[dict[str, Any]] = [{"type": "input_text", "text": text}]
        if image:
            content.insert(0, {"type": "input_image", "image_url": "data:image/png;base64," + PNG_1PX})
        return {"role": "user", "content": content}

    def ask(self, model: str, history: list[Any], stream: bool, tools: bool = False) -> Reply:
        kw: dict[str, Any] = {"model": model, "max_output_tokens": 200, "instructions": "You are terse.",
                              "input": history}
        if tools:
            kw["tools"] = [{"type": "function", "name": TOOL["name"], "description": TOOL["description"],
                            "parameters": TOOL["schema"], "strict": False}]
        if stream:
            raw = self.client.responses.with_raw_response.create(**kw, stream=True)
            events = list(raw.parse())
            headers = raw.headers
            assert events[-1].type in ("response.completed", "response.incomplete")
            deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
            r = events[-1].response
            assert r.output_text == deltas
        else:
            raw = self.client.responses.with_raw_response.create(**kw)
            r, headers = raw.parse(), raw.headers
        self.last_output = [item.model_dump(exclude_none=True) for item in r.output]
        calls = [item for item in r.output if item.type == "function_call"]
        tool = (calls[0].call_id, calls[0].name, json.loads(calls[0].arguments)) if calls else None
        return Reply(r.output_text, tool, str(r.status), (r.usage.input_tokens, r.usage.output_tokens), headers)

    def after_tool(self, history: list[Any], reply: Reply, result: str) -> list[Any]:
        assert reply.tool is not None
        items = [{k: v for k, v in item.items() if k != "status"} for item in self.last_output]
        return [*history, *items, {"type": "function_call_output", "call_id": reply.tool[0], "output": result}]

    def errors(self) -> tuple[type[Exception], type[Exception]]:
        return self.sdk.RateLimitError, self.sdk.BadRequestError


CALLERS = {"anthropic": AnthropicCaller, "openai": OpenAICaller, "gemini": GeminiCaller, "responses": ResponsesCaller}
PROTOCOL_OF = {"anthropic": "anthropic", "openai": "openai", "gemini": "gemini", "responses": "openai"}
PROVIDERS = ("anthropic", "openai", "gemini")
MODEL_OF = {"anthropic": "claude-haiku-4-5", "openai": "gpt-4o-mini", "gemini": "gemini-2.5-flash"}
PROVIDER_OF = {"anthropic": "anthropic", "openai": "openai", "gemini": "google"}


# -- the real agent clients (installed by .ci/install-clients) ------------------------------------
def client_bin(name: str) -> Path | None:
    """The pinned client's executable, None when it is not installed (then the test skips, except in CI)."""
    base = Path(os.environ.get("AGENTDECK_CLIENTS_DIR") or Path.home() / ".cache" / "agentdeck-clients")
    exe = base / "node_modules" / ".bin" / name
    return exe if exe.exists() else None


def run_client(gw: Any, root: Path, client: str, *args: str, timeout: float = 180.0) -> subprocess.CompletedProcess[str]:
    """`agentdeck run --url GW -- CLIENT ARGS` with a fresh HOME and none of the developer's client setup."""
    import pytest

    exe = client_bin(client)
    if exe is None:
        if os.environ.get("AGENTDECK_REQUIRE_CLIENTS") == "1":
            pytest.fail(f"{client} is not installed (bash .ci/install-clients)")
        pytest.skip(f"{client} is not installed (bash .ci/install-clients)")
    cfg = root / "run.toml"
    cfg.write_text(f'[gateway]\nadmin_token = "{ADMIN_TOKEN}"\n\n[[keys]]\nname = "dev"\nkey = "{GATEWAY_KEY}"\n')
    home, work = root / "home", root / "work"
    home.mkdir(exist_ok=True)
    work.mkdir(exist_ok=True)
    if client == "gemini":
        # What a Gemini CLI user has once (REFERENCE.md): the API-key auth type in their own settings.
        # `agentdeck run` also ships it as a system-defaults file, but Gemini CLI skips that file when a
        # parent directory is world-writable, as it is for a checkout under /tmp.
        (home / ".gemini").mkdir(exist_ok=True)
        (home / ".gemini" / "settings.json").write_text('{"security": {"auth": {"selectedType": "gemini-api-key"}}}')
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ANTHROPIC_", "OPENAI_", "GEMINI", "GOOGLE_", "CLAUDE", "CODEX_", "AGENTDECK_"))}
    env.update(HOME=str(home), NO_COLOR="1", PATH=f"{exe.parent}:{env.get('PATH', '')}")
    return subprocess.run([sys.executable, "-m", "agentdeck", "run", "--url", gw.url, "--config", str(cfg), "--",
                           client, *args], env=env, cwd=work, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, check=False)
