"""Was a cheap tier's answer good enough to hand back?

The seed escalates when a quality check fails. At the gateway we cannot run the
project's tests, but four failures are visible in the response itself and are exactly the
ones a cheaper model produces more often: it stopped at max_tokens, it returned nothing,
it broke the JSON it was asked for, or the tier itself could not take the request (the
prompt did not fit its context window). Each check returns a short reason that is recorded
with the request, so `agentdeck savings` can show which rules escalate most.
"""

from __future__ import annotations

import json
import re
from typing import Any

from agentdeck.routing.extract import gemini_messages, last_user_text, text_of, system_text

TRUNCATED = "truncated"
INVALID_JSON = "invalid-json"
EMPTY = "empty"
CONTEXT_LENGTH = "context-length"

# "Respond only with JSON", "return a JSON object", "output valid JSON", "JSON only".
# Narrow on purpose: "parse this JSON file" or "fix the JSON loader" asks for no JSON output.
_ASKS_JSON = re.compile(
    r"\b(?:respond|reply|answer|output|return|format (?:your|the) (?:answer|response|output)|give me|produce|emit)"
    r"\b(?:\s+(?:only|just|strictly|with|in|as|using|a|an|the|your|answer|response|valid|raw|strict|well-formed|"
    r"single|one|plain)){0,5}\s+json\b(?!\s*(?:file|loader|parser|module|library|config|schema file|path|reader|"
    r"writer|encoder|decoder|serializer|field|key|string|blob|column|payload from|data from))"
    r"|\bjson\s+only\b|\bonly\s+(?:valid\s+|raw\s+)?json\b|\bin\s+json\s+format\b|\bvalid\s+json\s+(?:object|array)\b",
    re.I,
)
_FENCED = re.compile(r"^\s*```(?:json|JSON)?\s*\n(.*?)\n?```\s*$", re.S)
_CONTEXT_ERRORS = re.compile(
    r"context_length_exceeded|maximum context length|prompt is too long|too many tokens|"
    r"input is too long|exceeds the context window|string_above_max_length",
    re.I,
)


def _is_responses(endpoint: str) -> bool:
    return endpoint.rstrip("/").endswith("responses")


def json_requested(protocol: str, endpoint: str, body: dict[str, Any]) -> bool:
    """Did the request ask for JSON output: a response format, or the prompt says so in as many words."""
    if protocol == "openai":
        if _is_responses(endpoint):
            fmt = (body.get("text") or {}).get("format") if isinstance(body.get("text"), dict) else None
            if isinstance(fmt, dict) and str(fmt.get("type", "")).startswith("json"):
                return True
            inp = body.get("input")
            last = inp if isinstance(inp, str) else last_user_text(inp) if isinstance(inp, list) else ""
        else:
            rf = body.get("response_format")
            if isinstance(rf, dict) and rf.get("type") in ("json_object", "json_schema"):
                return True
            msgs = body.get("messages")
            last = last_user_text(msgs) if isinstance(msgs, list) else ""
    elif protocol == "gemini":
        gc = body.get("generationConfig")
        if isinstance(gc, dict) and gc.get("responseMimeType") == "application/json":
            return True
        contents = body.get("contents")
        last = last_user_text(gemini_messages(contents)) if isinstance(contents, list) else ""
    else:
        msgs = body.get("messages")
        last = last_user_text(msgs) if isinstance(msgs, list) else ""
    if "json" not in last.lower():
        sys_text = system_text(protocol, endpoint, body)
        return "json" in sys_text.lower() and bool(_ASKS_JSON.search(sys_text))
    return bool(_ASKS_JSON.search(last)) or bool(_ASKS_JSON.search(system_text(protocol, endpoint, body)))


def _parses(text: str) -> bool:
    m = _FENCED.match(text)
    if m:
        text = m.group(1)
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def _answer(protocol: str, endpoint: str, request_body: dict[str, Any], resp: dict[str, Any]) -> tuple[str | None, str, bool]:
    """(stop signal, answer text, has tool calls) from a response body."""
    if protocol == "anthropic":
        blocks = resp.get("content") if isinstance(resp.get("content"), list) else []
        text = text_of(blocks)
        tools = any(isinstance(b, dict) and b.get("type") in ("tool_use", "server_tool_use") for b in blocks)
        # An assistant prefill ("{") is the start of the answer the model continues.
        msgs = request_body.get("messages")
        if isinstance(msgs, list) and msgs and isinstance(msgs[-1], dict) and msgs[-1].get("role") == "assistant":
            text = text_of(msgs[-1].get("content")) + text
        stop = "truncated" if resp.get("stop_reason") == "max_tokens" else None
        return stop, text, tools
    if protocol == "gemini":
        cands = resp.get("candidates") if isinstance(resp.get("candidates"), list) else []
        first = cands[0] if cands and isinstance(cands[0], dict) else {}
        content = first.get("content") if isinstance(first.get("content"), dict) else {}
        parts = [p for p in content.get("parts") or [] if isinstance(p, dict)] if isinstance(content.get("parts"), list) else []
        text = "".join(p["text"] for p in parts if isinstance(p.get("text"), str) and not p.get("thought"))
        tools = any("functionCall" in p for p in parts)
        stop = "truncated" if first.get("finishReason") == "MAX_TOKENS" else None
        return stop, text, tools
    if _is_responses(endpoint):
        texts, tools = [], False
        for item in resp.get("output") or []:
            if not isinstance(item, dict):
                continue
            if item.get("type") == "message":
                for part in item.get("content") or []:
                    if isinstance(part, dict) and part.get("type") == "output_text" and isinstance(part.get("text"), str):
                        texts.append(part["text"])
            elif item.get("type") in ("function_call", "custom_tool_call", "computer_call", "web_search_call", "file_search_call"):
                tools = True
        text = "".join(texts) or (resp.get("output_text") if isinstance(resp.get("output_text"), str) else "")
        stop = "truncated" if resp.get("status") == "incomplete" else None
        return stop, text, tools
    choices = resp.get("choices") if isinstance(resp.get("choices"), list) else []
    first = choices[0] if choices and isinstance(choices[0], dict) else {}
    msg = first.get("message") if isinstance(first.get("message"), dict) else {}
    text = text_of(msg.get("content"))
    tools = bool(msg.get("tool_calls")) or bool(msg.get("function_call")) or bool(msg.get("refusal"))
    stop = "truncated" if first.get("finish_reason") == "length" else None
    return stop, text, tools


def quality_problem(protocol: str, endpoint: str, request_body: dict[str, Any], response_body: dict[str, Any]) -> str | None:
    """`truncated`, `empty` or `invalid-json` when a successful answer is not good enough; else None."""
    if endpoint.rstrip("/").endswith("count_tokens"):
        return None  # a token count is not an answer
    if not isinstance(response_body, dict):
        return EMPTY
    stop, text, tools = _answer(protocol, endpoint, request_body if isinstance(request_body, dict) else {}, response_body)
    if stop is not None:
        return TRUNCATED
    if not text.strip():
        return None if tools else EMPTY
    if not tools and isinstance(request_body, dict) and json_requested(protocol, endpoint, request_body) and not _parses(text):
        return INVALID_JSON
    return None


def error_problem(status: int, response_body: Any) -> str | None:
    """`context-length` when an upstream error says the prompt does not fit this tier's model.

    That is the one error a bigger tier can fix; rate limits, outages and bad requests are
    the retry/fallback path's business, not escalation's. Streams can use this too: the
    upstream's error arrives before the first byte goes to the client.
    """
    if status not in (400, 413, 422):
        return None
    if isinstance(response_body, (dict, list)):
        response_body = json.dumps(response_body)
    if isinstance(response_body, bytes):
        response_body = response_body.decode("utf-8", "replace")
    if isinstance(response_body, str) and _CONTEXT_ERRORS.search(response_body):
        return CONTEXT_LENGTH
    return None
