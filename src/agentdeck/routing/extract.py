"""The task text and prompt size of a request, in any of the three wire formats.

`auto` routes on what the person asked last, so this finds the last user message that
has text (an agent's last user turn is often only tool results; the task is the text
before them). The context size counts every string in the prompt at ~4 characters per
token: cheap (no JSON dump, no tokenizer) and close enough to tell 2k from 100k.

Any JSON is accepted: the gateway forwards fields it does not govern as sent, so a tool
whose ``description`` is a number or whose ``properties`` is a string is the provider's to
judge; here an odd value only counts for nothing, it never raises.
"""

from __future__ import annotations

import re
from typing import Any

CHARS_PER_TOKEN = 4


def text_of(content: Any) -> str:
    """Text of a message's content: a string, or the text parts of a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for p in content:
            if isinstance(p, str):
                parts.append(p)
            elif isinstance(p, dict) and p.get("type") in ("text", "input_text") and isinstance(p.get("text"), str):
                parts.append(p["text"])
        return "\n".join(parts)
    return ""


def _size(value: Any, depth: int = 0) -> int:
    """Characters of prompt text in a value: strings in content, tool results, arguments."""
    if isinstance(value, str):
        return len(value)
    if depth > 6:
        return 0
    if isinstance(value, list):
        return sum(_size(v, depth + 1) for v in value)
    if isinstance(value, dict):
        n = 0
        for k in ("content", "text", "input", "output", "arguments", "instructions", "system", "thinking",
                  "tool_calls", "function"):
            v = value.get(k)
            if v is not None:
                n += _size(v, depth + 1)
        inp = value.get("input")
        if isinstance(inp, dict):  # Anthropic tool_use input is an object
            n += sum(_size(v, depth + 1) if isinstance(v, (str, list, dict)) else len(str(v)) for v in inp.values())
        return n
    return 0


# Blocks agent CLIs wrap around the user's words (Claude Code's reminders, Codex's AGENTS.md
# and environment): context for the model, not the task a person typed.
_WRAPPERS = ("<system-reminder>", "<environment_context>", "<user_instructions>")
_WRAPPER_BLOCK = re.compile(r"<(system-reminder|environment_context|user_instructions)>.*?(?:</\1>|\Z)", re.S)


def strip_wrappers(text: str) -> str:
    if "<" not in text or not any(w in text for w in _WRAPPERS):
        return text
    return _WRAPPER_BLOCK.sub(" ", text)


# A reply made only of these words approves what came before; it is not a task of its own.
_APPROVAL = frozenset(
    "yes yep yup yeah y ok okay k sure go ahead do it that this continue proceed please pls sounds good lgtm "
    "looks great thanks thank you perfect approved approve carry on keep going next alright fine cool nice right "
    "correct exactly agreed let's lets now then and the plan same again retry try".split()
)
_REPLY_WORD = re.compile(r"[a-z']+")


def is_approval(text: str) -> bool:
    words = _REPLY_WORD.findall(text.lower())
    return 0 < len(words) <= 8 and all(w in _APPROVAL for w in words)


def last_user_text(items: list[Any], role_key: str = "role") -> str:
    """The newest user message that has words of its own (tool results and agent wrappers skipped).

    A reply like "yes", "go ahead" or "ok do it" carries no task of its own: it approves the
    one before, so the previous user message is read with it.
    """
    found: list[str] = []
    for item in reversed(items):
        if isinstance(item, dict) and item.get(role_key) == "user":
            text = strip_wrappers(text_of(item.get("content"))).strip()
            if text:
                found.append(text)
                if not is_approval(text) or len(found) == 2:
                    break
    return "\n".join(reversed(found))


def extract_text(protocol: str, endpoint: str, body: dict[str, Any]) -> tuple[str, int]:
    """(the last user message's text, estimated prompt tokens) for OpenAI chat/Responses, Anthropic and Gemini bodies."""
    if not isinstance(body, dict):
        return "", 0
    chars = 0
    text = ""
    if protocol == "openai" and endpoint.rstrip("/").endswith("responses"):
        inp = body.get("input")
        if isinstance(inp, str):
            text = strip_wrappers(inp).strip()
            chars += len(inp)
        elif isinstance(inp, list):
            text = last_user_text(inp)
            chars += _size(inp)
        instructions = body.get("instructions")
        if isinstance(instructions, str):
            chars += len(instructions)
    elif protocol == "gemini":
        contents = body.get("contents")
        if isinstance(contents, list):
            messages = gemini_messages(contents)
            text = last_user_text(messages)
            chars += _size(messages)
        system = body.get("systemInstruction")
        if isinstance(system, dict):
            chars += _size(gemini_messages([system]))
    else:
        messages = body.get("messages")
        if isinstance(messages, list):
            text = last_user_text(messages)
            chars += _size(messages)
        system = body.get("system")  # Anthropic: str or list of text blocks
        if system is not None:
            chars += _size(system)
    tools = body.get("tools")
    if isinstance(tools, list):
        chars += _tools_size(tools)
    return text, (chars + CHARS_PER_TOKEN - 1) // CHARS_PER_TOKEN


def gemini_messages(contents: list[Any]) -> list[dict[str, Any]]:
    """Gemini `contents` (role user / model, `parts[].text`) as messages with text blocks (thoughts left out)."""
    out: list[dict[str, Any]] = []
    for c in contents:
        if not isinstance(c, dict):
            continue
        parts = c.get("parts")
        blocks = [{"type": "text", "text": p["text"]} for p in parts if isinstance(p, dict)
                  and isinstance(p.get("text"), str) and not p.get("thought")] if isinstance(parts, list) else []
        out.append({"role": "user" if c.get("role", "user") == "user" else "assistant", "content": blocks})
    return out


def _tools_size(tools: list[Any]) -> int:
    """Characters the tool definitions add: description and name, ~40 per parameter."""
    chars = 0
    for t in tools:
        if not isinstance(t, dict):
            continue
        fn = t.get("function") if isinstance(t.get("function"), dict) else t
        desc, name = fn.get("description"), fn.get("name")
        if isinstance(desc, str):
            chars += len(desc) + (len(name) if isinstance(name, str) else 0)
        schema = fn.get("parameters") or fn.get("input_schema")
        if isinstance(schema, dict):
            props = schema.get("properties")
            if isinstance(props, (dict, list)):
                chars += 40 * len(props)
    return chars


def system_text(protocol: str, endpoint: str, body: dict[str, Any]) -> str:
    """The system prompt / instructions as text (OpenAI system/developer messages included)."""
    if not isinstance(body, dict):
        return ""
    if protocol == "anthropic":
        return text_of(body.get("system"))
    if protocol == "gemini":
        si = body.get("systemInstruction")
        return "\n".join(text_of(m["content"]) for m in gemini_messages([si])) if isinstance(si, dict) else ""
    if endpoint.rstrip("/").endswith("responses"):
        parts = [body["instructions"]] if isinstance(body.get("instructions"), str) else []
        inp = body.get("input")
        if isinstance(inp, list):
            parts += [text_of(i.get("content")) for i in inp if isinstance(i, dict) and i.get("role") in ("system", "developer")]
        return "\n".join(parts)
    msgs = body.get("messages")
    if not isinstance(msgs, list):
        return ""
    return "\n".join(text_of(m.get("content")) for m in msgs if isinstance(m, dict) and m.get("role") in ("system", "developer"))
