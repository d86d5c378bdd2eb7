"""A running gateway is found from any directory with no flags (the registry of live gateways in the
runtime dir): status, stop, resume; several are all listed; a kill -9'd one is ignored and its entry
removed; the data dir is 0700 and gateway.json and the entries 0600. And `agentdeck demo` (the real
console, on a pseudo-terminal) is found the same way."""

from __future__ import annotations

import json
import os
import pty
import signal
import stat
import subprocess
import sys
import threading
from pathlib import Path

from ops_support import Served, agentdeck, chat, wait_for, write_config


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def test_status_stop_resume_find_a_gateway_from_another_directory(tmp_path: Path, env: dict[str, str],
                                                                  upstream: str) -> None:
    # The gateway's config is only known where it was started; the admin token only in its data dir.
    here = tmp_path / "project-a"
    cfg = write_config(here / "deck.toml", upstream, tmp_path / "data-a", admin_token="")
    elsewhere = tmp_path / "somewhere-else"
    elsewhere.mkdir()
    s = Served(["--config", str(cfg)], env, tmp_path / "logs", cwd=here)
    try:
        [entry] = list((tmp_path / "run").glob("gateway-*.json"))
        assert json.loads(entry.read_text())["url"] == s.url
        assert _mode(entry) == 0o600 and _mode(tmp_path / "run") == 0o700
        assert _mode(tmp_path / "data-a") == 0o700 and _mode(tmp_path / "data-a" / "gateway.json") == 0o600
        assert "admin_token" not in entry.read_text()

        st = agentdeck(env, "status", cwd=elsewhere)
        assert st.returncode == 0, st.stderr
        assert st.stdout.startswith(f"LIVE     {s.url}")
        stop = agentdeck(env, "stop", "--reason", "found you", cwd=elsewhere)
        assert stop.returncode == 0 and stop.stdout.startswith(f"STOPPED all traffic at {s.url}")
        assert chat(s.url).status_code == 403
        assert agentdeck(env, "status", cwd=elsewhere).returncode == 4
        assert agentdeck(env, "resume", cwd=elsewhere).returncode == 0
        assert chat(s.url).status_code == 200
    finally:
        s.stop()
    assert not list((tmp_path / "run").glob("gateway-*.json")), "a clean stop removes its entry"


def test_several_are_listed_and_a_killed_one_is_ignored(tmp_path: Path, env: dict[str, str], upstream: str) -> None:
    a = Served(["--config", str(write_config(tmp_path / "a.toml", upstream, tmp_path / "data-a"))], env,
               tmp_path / "logs", name="a")
    b = Served(["--config", str(write_config(tmp_path / "b.toml", upstream, tmp_path / "data-b"))], env,
               tmp_path / "logs", name="b")
    try:
        st = agentdeck(env, "status", cwd=tmp_path)
        assert st.returncode == 0, st.stderr
        assert a.url in st.stdout and b.url in st.stdout and st.stdout.count("LIVE") == 2
        both = json.loads(agentdeck(env, "status", "--json", cwd=tmp_path).stdout)
        assert {g["url"] for g in both["gateways"]} == {a.url, b.url}
        ambiguous = agentdeck(env, "stop", "--reason", "which one?", cwd=tmp_path)
        assert ambiguous.returncode == 2 and "--url" in ambiguous.stderr and len(ambiguous.stderr.splitlines()) == 1

        os.kill(b.pid, signal.SIGKILL)  # no cleanup: its entry stays behind, stale
        b.proc.wait(10)
        st = agentdeck(env, "status", cwd=tmp_path)
        assert st.returncode == 0 and a.url in st.stdout and b.url not in st.stdout
        entries = [json.loads(p.read_text()) for p in (tmp_path / "run").glob("gateway-*.json")]
        assert [e["pid"] for e in entries] == [a.pid], "the dead gateway's entry is removed"
    finally:
        a.stop()
        b.stop()


def test_a_running_demo_is_found_from_elsewhere(tmp_path: Path, env: dict[str, str]) -> None:
    master, slave = pty.openpty()
    demo_env = {**env, "TERM": "xterm-256color", "COLUMNS": "140", "LINES": "45"}
    proc = subprocess.Popen([sys.executable, "-m", "agentdeck", "demo", "--duration", "60"], env=demo_env,
                            stdin=slave, stdout=slave, stderr=slave, cwd=tmp_path, start_new_session=True)
    os.close(slave)

    def drain() -> None:  # the console draws continuously: keep the pty from filling up
        try:
            while os.read(master, 65536):
                pass
        except OSError:
            pass

    threading.Thread(target=drain, daemon=True).start()
    try:
        entry = wait_for(lambda: next(iter((tmp_path / "run").glob("gateway-*.json")), None), timeout=40)
        info = json.loads(entry.read_text())
        assert info["kind"] == "demo" and info["pid"] == proc.pid
        other = tmp_path / "another-terminal"
        other.mkdir()
        st = agentdeck(env, "status", cwd=other)
        assert st.returncode == 0 and st.stdout.startswith(f"LIVE     {info['url']}"), st.stderr
        assert agentdeck(env, "stop", "--reason", "demo drill", cwd=other).returncode == 0
        stopped = agentdeck(env, "status", cwd=other)
        assert stopped.returncode == 4 and "demo drill" in stopped.stdout
        assert agentdeck(env, "resume", cwd=other).returncode == 0
        show_url = "import os; print(os.environ['AGENTDECK_URL'])"
        ran = agentdeck(env, "run", "--", sys.executable, "-c", show_url, cwd=other)
        assert ran.returncode == 0 and ran.stdout.strip() == info["url"], ran.stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        os.close(master)
