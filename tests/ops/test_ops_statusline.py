"""`agentdeck statusline` on Claude Code's statusLine JSON: one line, LIVE/STOPPED, the day's spend against
the daily budget, the session's spend inside `agentdeck run`; always exit 0 with a line, gateway or not."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from ops_support import ADMIN_TOKEN, KEY_DEV, Served, agentdeck, chat

from agentdeck.cli.statusline import claude_settings_json

CLAUDE_STDIN = json.dumps({
    "hook_event_name": "Status", "session_id": "abc123", "transcript_path": "/tmp/t.jsonl", "cwd": "/tmp",
    "model": {"id": "claude-opus-4-1", "display_name": "Opus"},
    "workspace": {"current_dir": "/tmp", "project_dir": "/tmp"}, "version": "2.1.330",
    "output_style": {"name": "default"}, "cost": {"total_cost_usd": 0.01, "total_duration_ms": 4500},
})


def test_live_spend_session_and_stopped(tmp_path: Path, env: dict[str, str], config: Path) -> None:
    s = Served(["--config", str(config), "--quiet"], env, tmp_path / "logs")
    try:
        assert chat(s.url).status_code == 200
        p = agentdeck(env, "statusline", stdin=CLAUDE_STDIN)
        assert p.returncode == 0 and len(p.stdout.splitlines()) == 1, p.stderr
        assert p.stdout.startswith("agentdeck LIVE  $") and "/$50.00 today" in p.stdout
        assert "\x1b[" not in p.stdout  # NO_COLOR is set in the test environment

        # Inside `agentdeck run`: the session's name and the gateway's URL are in the environment.
        created = httpx.post(s.url + "/admin/sessions", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
                             json={"name": "statusline-sess", "budget_usd": 2.0, "key": "dev"}).json()
        assert chat(s.url, key=created["key"]).status_code == 200
        sess_env = {**env, "AGENTDECK_URL": s.url, "AGENTDECK_SESSION": created["session"]}
        p = agentdeck(sess_env, "statusline", stdin=CLAUDE_STDIN)
        assert "session $" in p.stdout and "/$2.00" in p.stdout, p.stdout

        colored = agentdeck({k: v for k, v in env.items() if k != "NO_COLOR"}, "statusline", stdin=CLAUDE_STDIN)
        assert "\x1b[32mLIVE" in colored.stdout

        assert agentdeck(env, "stop", "--reason", "runaway loop").returncode == 0
        p = agentdeck(env, "statusline", stdin=CLAUDE_STDIN)
        assert p.returncode == 0 and p.stdout.startswith("agentdeck STOPPED") and "runaway loop" in p.stdout
    finally:
        s.stop()
    for secret in (ADMIN_TOKEN, KEY_DEV):
        assert secret not in p.stdout


def test_no_gateway_is_still_one_line_and_exit_0(env: dict[str, str]) -> None:
    p = agentdeck(env, "statusline", stdin=CLAUDE_STDIN)
    assert p.returncode == 0 and p.stdout == "agentdeck: no gateway running\n" and p.stderr == ""
    p = agentdeck(env, "statusline", "--url", "http://127.0.0.1:1", stdin="not json at all")
    assert p.returncode == 0 and p.stdout.startswith("agentdeck: gateway unreachable") and p.stderr == ""


def test_settings_for_claude_code() -> None:
    doc = json.loads(claude_settings_json())
    assert doc == {"statusLine": {"type": "command", "command": "agentdeck statusline", "padding": 0}}


FAKE_CLAUDE = '''#!{python}
"""Stands in for Claude Code: reads --settings and runs its statusLine command as Claude Code does."""
import json, subprocess, sys
settings = json.loads(sys.argv[sys.argv.index("--settings") + 1])
cmd = settings["statusLine"]["command"]
out = subprocess.run(cmd, shell=True, input={stdin!r}, capture_output=True, text=True, timeout=30)
print("STATUSLINE:" + out.stdout.strip())
'''


def test_run_installs_the_status_line_for_a_claude_session(tmp_path: Path, env: dict[str, str], config: Path) -> None:
    import sys

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "claude"
    fake.write_text(FAKE_CLAUDE.format(python=sys.executable, stdin=CLAUDE_STDIN))
    fake.chmod(0o755)
    s = Served(["--config", str(config), "--quiet"], env, tmp_path / "logs")
    try:
        run_env = {**env, "PATH": f"{bin_dir}:{env['PATH']}"}
        p = agentdeck(run_env, "run", "--statusline", "--key", "dev", "--", "claude", "-p", "hello", cwd=tmp_path)
    finally:
        s.stop()
    assert p.returncode == 0, p.stderr
    [line] = [ln for ln in p.stdout.splitlines() if ln.startswith("STATUSLINE:")]
    assert line.startswith("STATUSLINE:agentdeck LIVE") and "session $" in line, line
