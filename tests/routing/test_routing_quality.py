"""Quality checks on answers in all three wire formats, and what `auto` reads from a request."""

from __future__ import annotations

from typing import Any

import pytest

from agentdeck.routing import error_problem, extract_text, json_requested, quality_problem

CHAT = ("openai", "/v1/chat/completions")
RESP = ("openai", "/v1/responses")
MSGS = ("anthropic", "/v1/messages")


def chat_answer(content: str | None, finish: str = "stop", **msg: Any) -> dict[str, Any]:
    return {"choices": [{"index": 0, "message": {"role": "assistant", "content": content, **msg}, "finish_reason": finish}]}


def resp_answer(text: str | None, status: str = "completed", extra: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    output: list[dict[str, Any]] = list(extra or [])
    if text is not None:
        output.append({"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": text}]})
    return {"object": "response", "status": status, "output": output}


def msg_answer(text: str | None, stop: str = "end_turn", extra: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    content: list[dict[str, Any]] = list(extra or [])
    if text is not None:
        content.append({"type": "text", "text": text})
    return {"type": "message", "role": "assistant", "content": content, "stop_reason": stop}


USER = {"messages": [{"role": "user", "content": "explain the retry loop"}]}


# --- truncated --------------------------------------------------------------------------------
def test_truncated_in_every_format() -> None:
    assert quality_problem(*CHAT, USER, chat_answer("The retry loop", "length")) == "truncated"
    assert quality_problem(*RESP, {"input": "explain"}, resp_answer("The retry", "incomplete")) == "truncated"
    assert quality_problem(*MSGS, USER, msg_answer("The retry", "max_tokens")) == "truncated"
    assert quality_problem(*CHAT, USER, chat_answer("The retry loop backs off.")) is None
    assert quality_problem(*RESP, {"input": "explain"}, resp_answer("It backs off.")) is None
    assert quality_problem(*MSGS, USER, msg_answer("It backs off.")) is None


# --- empty --------------------------------------------------------------------------------------
def test_empty_answers_but_not_tool_calls() -> None:
    assert quality_problem(*CHAT, USER, chat_answer("")) == "empty"
    assert quality_problem(*CHAT, USER, chat_answer(None)) == "empty"
    assert quality_problem(*CHAT, USER, {"choices": []}) == "empty"
    assert quality_problem(*RESP, {"input": "x"}, resp_answer(None)) == "empty"
    assert quality_problem(*MSGS, USER, msg_answer("  \n")) == "empty"
    tool_call = [{"id": "c1", "type": "function", "function": {"name": "read", "arguments": "{}"}}]
    assert quality_problem(*CHAT, USER, chat_answer(None, "tool_calls", tool_calls=tool_call)) is None
    assert quality_problem(*RESP, {"input": "x"}, resp_answer(None, extra=[{"type": "function_call", "name": "f", "arguments": "{}"}])) is None
    assert quality_problem(*MSGS, USER, msg_answer(None, "tool_use", extra=[{"type": "tool_use", "id": "t", "name": "f", "input": {}}])) is None
    # A token count is not an answer and is never "empty".
    assert quality_problem("anthropic", "/v1/messages/count_tokens", USER, {"input_tokens": 12}) is None


# --- invalid JSON ------------------------------------------------------------------------------
def test_invalid_json_when_a_response_format_asks_for_it() -> None:
    req = {**USER, "response_format": {"type": "json_object"}}
    assert quality_problem(*CHAT, req, chat_answer('{"a": 1')) == "invalid-json"
    assert quality_problem(*CHAT, req, chat_answer('{"a": 1}')) is None
    schema = {**USER, "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}}}
    assert quality_problem(*CHAT, schema, chat_answer("Sure! Here it is")) == "invalid-json"
    resp_req = {"input": "list", "text": {"format": {"type": "json_schema", "name": "x", "schema": {}}}}
    assert quality_problem(*RESP, resp_req, resp_answer("[1, 2,")) == "invalid-json"
    assert quality_problem(*RESP, resp_req, resp_answer("[1, 2]")) is None
    # Without a JSON request, prose is fine.
    assert quality_problem(*CHAT, USER, chat_answer('{"a": 1')) is None


@pytest.mark.parametrize(("prompt", "asked"), [
    ("Respond only with valid JSON: the list of files", True),
    ("Return a JSON object with keys name and age", True),
    ("Output JSON, nothing else", True),
    ("Give me the answer in JSON format", True),
    ("JSON only, please.", True),
    ("Parse this JSON file and tell me what's wrong", False),
    ("Fix the JSON loader so it accepts comments", False),
    ("Return the JSON parser's error messages in English", False),
    ("Why does json.loads fail on NaN?", False),
])
def test_json_asked_in_words_is_read_narrowly(prompt: str, asked: bool) -> None:
    assert json_requested("openai", "/v1/chat/completions", {"messages": [{"role": "user", "content": prompt}]}) is asked
    assert json_requested("anthropic", "/v1/messages", {"messages": [{"role": "user", "content": prompt}]}) is asked


def test_json_asked_in_the_system_prompt_and_prefill() -> None:
    body = {"system": [{"type": "text", "text": "You are a classifier. Respond with JSON only."}],
            "messages": [{"role": "user", "content": "ticket: the app crashes"}]}
    assert json_requested(*MSGS, body)
    assert quality_problem(*MSGS, body, msg_answer("The category is bug")) == "invalid-json"
    assert quality_problem(*MSGS, body, msg_answer('```json\n{"category": "bug"}\n```')) is None
    # An assistant prefill "{" is the start of the answer the model continues.
    prefilled = {**body, "messages": [*body["messages"], {"role": "assistant", "content": "{"}]}
    assert quality_problem(*MSGS, prefilled, msg_answer('"category": "bug"}')) is None
    dev = {"messages": [{"role": "developer", "content": "Reply in JSON."}, {"role": "user", "content": "hi"}]}
    assert json_requested(*CHAT, dev)


# --- errors a tier up can fix ------------------------------------------------------------------------
def test_error_problem_only_for_context_length() -> None:
    assert error_problem(400, {"error": {"code": "context_length_exceeded", "message": "..."}}) == "context-length"
    assert error_problem(400, b'{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 210000 tokens > 200000 maximum"}}') == "context-length"
    assert error_problem(400, {"error": {"message": "max_tokens must be positive"}}) is None
    assert error_problem(429, {"error": {"message": "maximum context length"}}) is None
    assert error_problem(500, "boom") is None


# --- extract_text -------------------------------------------------------------------------------------
def test_extract_openai_chat() -> None:
    body = {"messages": [
        {"role": "system", "content": "s" * 400},
        {"role": "user", "content": "first task"},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "1", "type": "function", "function": {"name": "f", "arguments": "a" * 40}}]},
        {"role": "tool", "tool_call_id": "1", "content": "t" * 400},
        {"role": "user", "content": [{"type": "text", "text": "grep for TODOs"}, {"type": "image_url", "image_url": {"url": "data:..."}}]},
    ]}
    text, tokens = extract_text("openai", "/v1/chat/completions", body)
    assert text == "grep for TODOs"
    assert 200 <= tokens <= 240


def test_extract_responses_api() -> None:
    text, tokens = extract_text("openai", "/v1/responses", {"input": "Design a queue", "instructions": "i" * 4000})
    assert text == "Design a queue" and tokens == (len("Design a queue") + 4000 + 3) // 4
    items = {"instructions": "be brief", "input": [
        {"role": "user", "content": [{"type": "input_text", "text": "fix the typo"}]},
        {"type": "function_call", "call_id": "c", "name": "read", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c", "output": "o" * 8000},
    ]}
    text, tokens = extract_text("openai", "/v1/responses", items)
    assert text == "fix the typo" and tokens >= 2000


def test_extract_anthropic_skips_tool_results_for_the_task_but_counts_them() -> None:
    body = {"system": [{"type": "text", "text": "x" * 40_000}], "messages": [
        {"role": "user", "content": "Refactor the entire codebase to async"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "read", "input": {"path": "a.py"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": [{"type": "text", "text": "y" * 400_000}]}]},
    ]}
    text, tokens = extract_text("anthropic", "/v1/messages", body)
    assert text == "Refactor the entire codebase to async"
    assert 110_000 <= tokens <= 111_000


def test_extract_never_raises_on_odd_bodies() -> None:
    for body in ({}, {"messages": "nope"}, {"messages": [None, 3, {"role": "user", "content": 5}]}, {"input": 7}, {"system": 3}):
        assert extract_text("anthropic", "/v1/messages", body)[0] == ""
        assert extract_text("openai", "/v1/responses", body)[0] == ""
        assert extract_text("openai", "/v1/chat/completions", body)[0] == ""


def test_agent_wrappers_are_not_the_task() -> None:
    """Claude Code wraps reminders around the user's words; Codex sends AGENTS.md as a user message."""
    reminder = "<system-reminder>\nSecurity policy: never log payment data. Migrations need review.\n</system-reminder>"
    body = {"messages": [{"role": "user", "content": [{"type": "text", "text": reminder},
                                                      {"type": "text", "text": "grep for TODOs in src"}]}]}
    assert extract_text("anthropic", "/v1/messages", body)[0] == "grep for TODOs in src"
    codex = {"input": [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "<user_instructions>Use auth helpers.</user_instructions>"}]},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "<environment_context>cwd=/x</environment_context>"}]},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Fix the typo in README.md"}]},
    ]}
    assert extract_text("openai", "/v1/responses", codex)[0] == "Fix the typo in README.md"
    only_wrappers = {"input": [{"role": "user", "content": "<environment_context>cwd=/x</environment_context>"}]}
    assert extract_text("openai", "/v1/responses", only_wrappers)[0] == ""


def test_an_approval_is_read_with_the_task_it_approves() -> None:
    body = {"messages": [{"role": "user", "content": "Design the sharding architecture for the events table"},
                         {"role": "assistant", "content": "Here is a plan: ..."},
                         {"role": "user", "content": "ok, go ahead and do it"}]}
    text, _ = extract_text("anthropic", "/v1/messages", body)
    assert text == "Design the sharding architecture for the events table\nok, go ahead and do it"
    from agentdeck.routing import classify

    assert classify(text).tier == "smart"
    body["messages"][-1]["content"] = "now grep for TODOs"
    assert extract_text("anthropic", "/v1/messages", body)[0] == "now grep for TODOs"
