"""`auto` from a Gemini caller is classified on its last user turn, like the other protocols."""

from __future__ import annotations

from pathlib import Path

from routing_support import make_config

from agentdeck.routing import Router, extract_text, quality_problem


def test_the_task_of_a_gemini_body_is_its_last_user_text_not_a_tool_result() -> None:
    body = {"systemInstruction": {"parts": [{"text": "You are an agent."}]},
            "contents": [{"role": "user", "parts": [{"text": "design the authentication architecture for billing"}]},
                         {"role": "model", "parts": [{"text": "thinking...", "thought": True},
                                                     {"functionCall": {"name": "ls", "args": {}}}]},
                         {"role": "user", "parts": [{"functionResponse": {"name": "ls", "response": {"r": "a.py"}}}]}]}
    text, tokens = extract_text("gemini", "/v1beta/models/auto:generateContent", body)
    assert text == "design the authentication architecture for billing" and tokens > 0
    assert extract_text("gemini", "/v1beta/models/auto:generateContent", {"contents": "odd"}) == ("", 0)
    assert extract_text("gemini", "/v1beta/models/auto:generateContent", {"contents": [7, {"parts": 3}]})[0] == ""


def test_a_gemini_callers_auto_is_routed_by_the_classifier(tmp_path: Path) -> None:
    router = Router(make_config(tmp_path, tiers={"fast": "gemini-2.5-flash", "smart": "gemini-2.5-pro"}))
    fast = {"contents": [{"role": "user", "parts": [{"text": "grep for TODOs in the payments module"}]}]}
    smart = {"contents": [{"role": "user", "parts": [{"text": "Design a job queue for the video transcoding pipeline"}]}]}
    for body, model in ((fast, "gemini-2.5-flash"), (smart, "gemini-2.5-pro")):
        text = extract_text("gemini", "/v1beta/models/auto:generateContent", body)[0]
        assert router.resolve("auto", "gemini", text, 20, 0.0).model == model


def test_a_gemini_answer_is_judged_like_the_others() -> None:
    ep = "/v1beta/models/auto:generateContent"
    ask = {"contents": [{"role": "user", "parts": [{"text": "list the files"}]}]}

    def answer(parts: list[dict[str, object]], finish: str = "STOP") -> dict[str, object]:
        return {"candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": finish}]}

    assert quality_problem("gemini", ep, ask, answer([{"text": "a.py b.py"}])) is None
    assert quality_problem("gemini", ep, ask, answer([{"text": "a.py"}], "MAX_TOKENS")) == "truncated"
    assert quality_problem("gemini", ep, ask, answer([{"text": "hmm", "thought": True}])) == "empty"
    assert quality_problem("gemini", ep, ask, answer([{"functionCall": {"name": "ls", "args": {}}}])) is None
    wants_json = {**ask, "generationConfig": {"responseMimeType": "application/json"}}
    assert quality_problem("gemini", ep, wants_json, answer([{"text": "{not json"}])) == "invalid-json"
    says_json = {"systemInstruction": {"parts": [{"text": "Respond only with JSON."}]}, **ask}
    assert quality_problem("gemini", ep, says_json, answer([{"text": "{not json"}])) == "invalid-json"
    assert quality_problem("gemini", ep, says_json, answer([{"text": '{"files": []}'}])) is None


def test_route_takes_the_gemini_protocol(tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[gateway]\ndata_dir = "{tmp_path / "d"}"\n[routing.tiers]\nfast = "gemini-2.5-flash"\n')
    out = subprocess.run([sys.executable, "-m", "agentdeck", "route", "--json", "--protocol", "gemini", "--config",
                          str(cfg), "grep for TODOs in the payments module"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["model"] == "gemini-2.5-flash"
