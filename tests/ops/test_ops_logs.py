"""`agentdeck serve` logs one line per finished call and per stop/resume/alert: JSON lines that carry the
fields a pipeline needs, human lines by default, --quiet without the calls, and never a secret."""

from __future__ import annotations

import json
from pathlib import Path

from ops_support import ADMIN_TOKEN, SECRETS, Served, agentdeck, chat, message, wait_for, write_config

CALL_FIELDS = {"ts", "event", "request_id", "key", "session", "model_requested", "model", "tier", "provider", "status",
               "input_tokens", "output_tokens", "cost_usd", "latency_ms", "error_code"}


def _json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_json_log_lines_parse_and_carry_the_fields(tmp_path: Path, env: dict[str, str], config: Path) -> None:
    s = Served(["--config", str(config), "--log-format", "json"], env, tmp_path / "logs")
    try:
        ok = chat(s.url)
        assert ok.status_code == 200
        msg = message(s.url, model="fast")
        assert msg.content
        missing = chat(s.url, model="gpt-nope-1")  # no such model at the mock: the provider's 404 comes back
        unknown = chat(s.url, model="llama-99")  # no provider matches: the gateway's own 404
        assert unknown.status_code == 404
        env_admin = {**env, "AGENTDECK_ADMIN_TOKEN": ADMIN_TOKEN}
        assert agentdeck(env_admin, "stop", "--reason", "log test", "--url", s.url).returncode == 0
        assert agentdeck(env_admin, "resume", "--url", s.url).returncode == 0
        wait_for(lambda: sum(r["event"] in ("stop", "resume") for r in _json_lines(s.stderr())) == 2)
    finally:
        assert s.stop() == 0
    err = s.stderr()
    records = _json_lines(err)
    calls = [r for r in records if r["event"] == "call"]
    assert len(calls) == 4, err
    for r in calls:
        assert CALL_FIELDS <= set(r), r
        assert r["ts"].endswith("Z") and r["request_id"].startswith("req_") and r["key"] == "dev"
    by_model = {r["model_requested"]: r for r in calls}
    first = by_model["gpt-4o-mini"]
    assert first["status"] == 200 and first["provider"] == "openai" and first["model"] == "gpt-4o-mini"
    assert first["input_tokens"] > 0 and first["output_tokens"] > 0 and first["cost_usd"] > 0
    assert first["latency_ms"] > 0 and first["error_code"] is None
    assert ok.headers["x-agentdeck-request-id"] == first["request_id"]
    fast = by_model["fast"]
    assert fast["tier"] == "fast" and fast["provider"] == "anthropic" and fast["model"].startswith("claude-")
    assert by_model["gpt-nope-1"]["status"] == missing.status_code
    assert by_model["llama-99"]["status"] == 404 and by_model["llama-99"]["error_code"]
    stop, resume = [r for r in records if r["event"] in ("stop", "resume")]
    assert stop["event"] == "stop" and stop["reason"] == "log test" and stop["actor"] == "cli" and stop["key"] is None
    assert resume["event"] == "resume"
    for secret in SECRETS:
        assert secret not in err
    assert "say hi" not in err  # no bodies without log_bodies


def test_human_lines_by_default_and_quiet_keeps_only_stops(tmp_path: Path, env: dict[str, str], config: Path) -> None:
    s = Served(["--config", str(config)], env, tmp_path / "logs", name="human")
    try:
        r = chat(s.url)
        rid = r.headers["x-agentdeck-request-id"]
        line = wait_for(lambda: next((ln for ln in s.stderr().splitlines() if rid in ln), None))
    finally:
        s.stop()
    assert " call " in line and "gpt-4o-mini" in line and " 200 " in line and "ms" in line and "$" in line
    assert not line.startswith("{")

    q = Served(["--config", str(config), "--quiet"], env, tmp_path / "logs", name="quiet")
    try:
        assert chat(q.url).status_code == 200
        env_admin = {**env, "AGENTDECK_ADMIN_TOKEN": ADMIN_TOKEN}
        assert agentdeck(env_admin, "stop", "--reason", "quiet please", "--url", q.url).returncode == 0
        wait_for(lambda: "STOP" in q.stderr())
    finally:
        q.stop()
    err = q.stderr()
    assert "quiet please" in err and " call " not in err and "gpt-4o-mini" not in err


def test_log_format_from_the_config(tmp_path: Path, env: dict[str, str], upstream: str) -> None:
    cfg = write_config(tmp_path / "json.toml", upstream, tmp_path / "data-json", gateway='log_format = "json"')
    s = Served(["--config", str(cfg)], env, tmp_path / "logs", name="cfgjson")
    try:
        assert chat(s.url).status_code == 200
        wait_for(lambda: any(r["event"] == "call" for r in _json_lines(s.stderr())))
    finally:
        s.stop()


def test_a_bad_log_format_is_one_line(env: dict[str, str], config: Path) -> None:
    p = agentdeck(env, "serve", "--config", str(config), "--log-format", "xml")
    assert p.returncode == 2 and "--log-format" in p.stderr and "Traceback" not in p.stderr
