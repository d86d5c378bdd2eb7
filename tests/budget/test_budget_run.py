"""`agentdeck run`: the session's environment, Codex's provider overrides, exit codes, signals, kill-on-stop."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from agentdeck.cli.run import codex_args, covers, session_env

from budget_support import GatewayDouble, agentdeck

URL = "http://127.0.0.1:8787"


def test_session_env_points_every_tool_at_the_gateway() -> None:
    base = {"PATH": "/bin", "ANTHROPIC_AUTH_TOKEN": "stale-real-token", "ANTHROPIC_API_KEY": "sk-ant-real"}
    env = session_env(base, URL + "/", "run-1", "adk-s-xyz", ["python", "agent.py"])
    assert env["ANTHROPIC_BASE_URL"] == URL  # no /v1: the SDK and Claude Code add it
    assert env["ANTHROPIC_API_KEY"] == "adk-s-xyz"
    assert "ANTHROPIC_AUTH_TOKEN" not in env  # never the user's real token, and no both-set warning
    assert env["OPENAI_BASE_URL"] == env["OPENAI_API_BASE"] == URL + "/v1"
    assert env["OPENAI_API_KEY"] == env["AGENTDECK_SESSION_KEY"] == "adk-s-xyz"
    assert env["AGENTDECK_SESSION"] == "run-1" and env["PATH"] == "/bin"


def test_claude_code_gets_the_bearer_token_only() -> None:
    env = session_env({"ANTHROPIC_API_KEY": "sk-ant-real"}, URL, "s", "adk-s-xyz", ["/usr/local/bin/claude", "-p", "hi"])
    assert env["ANTHROPIC_AUTH_TOKEN"] == "adk-s-xyz"
    assert "ANTHROPIC_API_KEY" not in env
    assert env["CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"] == "1"


def test_codex_gets_a_provider_after_the_subcommand() -> None:
    table = ('model_providers.agentdeck={name="agentdeck",base_url="http://127.0.0.1:8787/v1",'
             'env_key="AGENTDECK_SESSION_KEY",wire_api="responses"}')
    assert codex_args(["codex", "exec", "fix the test"], URL) == [
        "codex", "exec", "-c", "model_provider=agentdeck", "-c", table, "fix the test"]
    assert codex_args(["codex", "write a poem"], URL) == ["codex", "-c", "model_provider=agentdeck", "-c", table, "write a poem"]
    mine = ["codex", "exec", "-c", "model_provider=other", "x"]
    assert codex_args(mine, URL) == mine
    assert codex_args(["python", "exec"], URL) == ["python", "exec"]


def test_covers() -> None:
    assert covers({"stopped": True, "stop_reason": "r"}, "s", None) == "r"
    assert covers({"stopped": False, "stopped_keys": {"s": "loop"}}, "s", None) == "loop"
    assert covers({"stopped": False, "stopped_keys": {"dev": "x"}}, "s", "dev") == "x"
    assert covers({"stopped": False, "stopped_keys": {"other": "x"}}, "s", "dev") is None


DUMP = """
import json, os, sys
keys = ["ANTHROPIC_BASE_URL", "ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "OPENAI_BASE_URL", "OPENAI_API_KEY",
        "OPENAI_API_BASE", "AGENTDECK_SESSION", "AGENTDECK_SESSION_KEY"]
print(json.dumps({"argv": sys.argv[1:], "env": {k: os.environ.get(k) for k in keys},
                  "pgid_is_own": os.getpgrp() == os.getpid()}))
sys.exit(int(os.environ.get("EXIT_WITH", "0")))
"""


def test_run_creates_a_session_sets_env_and_returns_the_exit_code(cli_env: dict[str, str], gateway: GatewayDouble,
                                                                   tmp_path: Path) -> None:
    script = tmp_path / "dump.py"
    script.write_text(DUMP)
    r = agentdeck({**cli_env, "EXIT_WITH": "3", "ANTHROPIC_AUTH_TOKEN": "real"}, "run", "--url", gateway.url,
                  "--budget", "2.5", "--", sys.executable, str(script), "--flag")
    assert r.returncode == 3, r.stderr
    out = json.loads(r.stdout)
    assert out["argv"] == ["--flag"]
    assert out["pgid_is_own"] is True  # its own process group
    assert out["env"] == {
        "ANTHROPIC_BASE_URL": gateway.url, "ANTHROPIC_API_KEY": "adk-s-secret1", "ANTHROPIC_AUTH_TOKEN": None,
        "OPENAI_BASE_URL": gateway.url + "/v1", "OPENAI_API_KEY": "adk-s-secret1", "OPENAI_API_BASE": gateway.url + "/v1",
        "AGENTDECK_SESSION": out["env"]["AGENTDECK_SESSION"], "AGENTDECK_SESSION_KEY": "adk-s-secret1",
    }
    sessions = [c for c in gateway.calls if c[1] == "/admin/sessions"]
    assert len(sessions) == 1
    body = sessions[0][2]
    assert body is not None and body["budget_usd"] == 2.5 and body["key"] is None
    assert body["name"] == out["env"]["AGENTDECK_SESSION"] == Path(sys.executable).name
    assert r.stderr.strip() == f"agentdeck: session '{body['name']}' via {gateway.url}, budget $2.50"


def test_run_under_a_configured_key_and_a_fake_codex(cli_env: dict[str, str], gateway: GatewayDouble,
                                                       tmp_path: Path) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    codex = bindir / "codex"
    codex.write_text(f"#!{sys.executable}\n{DUMP}")
    codex.chmod(codex.stat().st_mode | stat.S_IXUSR)
    env = {**cli_env, "PATH": f"{bindir}{os.pathsep}{cli_env.get('PATH', '')}"}
    r = agentdeck(env, "run", "--url", gateway.url, "--key", "dev", "--", "codex", "exec", "fix it")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["argv"][:3] == ["exec", "-c", "model_provider=agentdeck"]
    assert f'base_url="{gateway.url}/v1"' in out["argv"][4] and out["argv"][5] == "fix it"
    assert out["env"]["AGENTDECK_SESSION_KEY"] == "adk-s-secret1"
    body = [c for c in gateway.calls if c[1] == "/admin/sessions"][0][2]
    assert body == {"name": "dev-codex", "budget_usd": None, "key": "dev"}


def _start_run(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "agentdeck", "run", *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)


@pytest.fixture
def groups() -> Any:
    """Process groups a test started; whatever happens in the test, none outlives it."""
    started: list[int] = []
    yield started
    for pgid in started:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def _wait_file(p: Path, timeout: float = 15.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if p.exists() and p.read_text().strip():
            return p.read_text().strip()
        time.sleep(0.02)
    raise AssertionError(f"{p} never written")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead for our purposes
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


SLEEPER = """
import os, signal, subprocess, sys, time
mode = sys.argv[1]
if mode == "trap":
    signal.signal(signal.SIGTERM, lambda *a: (print("got TERM", flush=True), sys.exit(7)))
elif mode == "stubborn":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
child = subprocess.Popen(["sleep", "60"])
open(sys.argv[2], "w").write(f"{os.getpid()} {child.pid}")
time.sleep(60)
"""


def test_signals_are_forwarded_and_the_exit_code_returned(cli_env: dict[str, str], gateway: GatewayDouble,
                                                           tmp_path: Path, groups: list[int]) -> None:
    script, ready = tmp_path / "sleeper.py", tmp_path / "ready"
    script.write_text(SLEEPER)
    p = _start_run(cli_env, "--url", gateway.url, "--", sys.executable, str(script), "trap", str(ready))
    try:
        groups.append(int(_wait_file(ready).split()[0]))
        p.send_signal(signal.SIGTERM)
        out, _ = p.communicate(timeout=10)
    finally:
        p.kill()
    assert p.returncode == 7 and "got TERM" in out


def test_kill_on_stop_ends_the_process_group(cli_env: dict[str, str], gateway: GatewayDouble, tmp_path: Path,
                                            groups: list[int]) -> None:
    script, ready = tmp_path / "sleeper.py", tmp_path / "ready"
    script.write_text(SLEEPER)
    p = _start_run(cli_env, "--url", gateway.url, "--kill-on-stop", "--key", "batch", "--",
                   sys.executable, str(script), "plain", str(ready))
    try:
        pid, grandchild = map(int, _wait_file(ready).split())
        groups.append(pid)
        time.sleep(0.3)
        assert p.poll() is None
        gateway.status["stopped_keys"]["somebody-else"] = "not us"
        time.sleep(0.5)
        assert p.poll() is None  # a stop of another key leaves the session alone
        t0 = time.monotonic()
        gateway.status["stopped_keys"]["batch"] = "runaway loop"  # `agentdeck stop --key batch`
        _, err = p.communicate(timeout=10)
        elapsed = time.monotonic() - t0
    finally:
        p.kill()
    assert p.returncode == 128 + signal.SIGTERM
    assert elapsed < 3.0  # 200 ms polling; generous for a loaded CI machine
    assert "emergency stop (runaway loop): terminating session 'batch'" in err
    time.sleep(0.2)
    assert not _alive(pid) and not _alive(grandchild)  # the whole group, not just the direct child


def test_kill_on_stop_escalates_to_sigkill(cli_env: dict[str, str], gateway: GatewayDouble, tmp_path: Path,
                                          groups: list[int]) -> None:
    script, ready = tmp_path / "sleeper.py", tmp_path / "ready"
    script.write_text(SLEEPER)
    p = _start_run(cli_env, "--url", gateway.url, "--kill-on-stop", "--kill-grace", "0.3", "--",
                   sys.executable, str(script), "stubborn", str(ready))
    try:
        groups.append(int(_wait_file(ready).split()[0]))
        t0 = time.monotonic()
        gateway.status["stopped"], gateway.status["stop_reason"] = True, "everything stops"
        p.communicate(timeout=10)
        elapsed = time.monotonic() - t0
    finally:
        p.kill()
    assert p.returncode == 128 + signal.SIGKILL
    assert 0.3 <= elapsed < 4.0


def test_missing_command_is_one_line(cli: Any, gateway: GatewayDouble) -> None:
    r = cli("run", "--url", gateway.url, "--", "no-such-tool-xyz")
    assert r.returncode == 2 and r.stderr.strip() == "agentdeck: error: run: command not found: no-such-tool-xyz"
    r = cli("run", "--url", gateway.url)
    assert r.returncode == 2 and "no command given" in r.stderr
