"""`agentdeck run` end to end: an SDK script reaches the mock provider through the real gateway under
its own session key; `--kill-on-stop` ends it when the session is stopped."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import httpx

from deck_support import ADMIN_TOKEN

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}

SCRIPT = textwrap.dedent("""
    import os, sys, time
    import anthropic, openai
    o = openai.OpenAI(max_retries=0)
    r = o.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi from a session"}])
    print("openai:", r.choices[0].message.content[:40])
    a = anthropic.Anthropic(max_retries=0)
    m = a.messages.create(model="claude-haiku-4-5", max_tokens=50, messages=[{"role": "user", "content": "hi"}])
    print("anthropic:", m.content[0].text[:40])
    print("session:", os.environ["AGENTDECK_SESSION"])
    if len(sys.argv) > 1:
        print("looping", flush=True)
        while True:
            try:
                o.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "again"}])
            except openai.PermissionDeniedError:
                pass
            time.sleep(0.05)
""")


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "ANTHROPIC_"))}
    env["AGENTDECK_ADMIN_TOKEN"] = ADMIN_TOKEN
    return env


def test_run_wraps_an_sdk_script_under_its_own_session(gateway: Any, tmp_path: Path, mock: Any) -> None:
    script = tmp_path / "agent.py"
    script.write_text(SCRIPT)
    r = subprocess.run([sys.executable, "-m", "agentdeck", "run", "--url", gateway.url, "--key", "nightly", "--budget", "2",
                        "--", sys.executable, str(script)], capture_output=True, text=True, env=_env(), timeout=60)
    assert r.returncode == 0, r.stderr
    assert "openai: model=gpt-4o-mini" in r.stdout and "anthropic: model=claude-haiku-4-5" in r.stdout
    session = r.stdout.split("session:")[1].strip()
    assert session.startswith("nightly")
    time.sleep(0.4)
    rows = httpx.get(gateway.url + "/admin/requests?limit=5", headers=ADMIN).json()["requests"]
    assert len(rows) == 2 and {row["session"] for row in rows} == {session}
    st = httpx.get(gateway.url + "/admin/status", headers=ADMIN).json()
    assert st["keys"][session]["budget_usd"] == 2.0 and st["keys"][session]["day_usd"] > 0
    # the provider saw the provider's key, never the session key
    assert "agentdeck" not in str(mock.stats()["last_headers"])


def test_kill_on_stop_ends_the_session(gateway: Any, tmp_path: Path) -> None:
    script = tmp_path / "loop.py"
    script.write_text(SCRIPT)
    proc = subprocess.Popen([sys.executable, "-m", "agentdeck", "run", "--url", gateway.url, "--key", "looper",
                             "--kill-on-stop", "--kill-grace", "1", "--", sys.executable, str(script), "loop"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
    assert proc.stdout is not None
    session = None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.startswith("session:"):
            session = line.split(":", 1)[1].strip()
        if line.startswith("looping"):
            break
    assert session
    other = httpx.post(gateway.url + "/admin/stop", headers=ADMIN, json={"reason": "session looping", "key": session})
    assert other.status_code == 200
    code = proc.wait(15)
    assert code != 0
    # everyone else keeps working
    assert httpx.get(gateway.url + "/admin/status", headers=ADMIN).json()["stopped"] is False


def test_session_keys_survive_a_gateway_restart(make_gateway: Any) -> None:
    import openai

    gw = make_gateway()
    made = httpx.post(gw.url + "/admin/sessions", headers=ADMIN, json={"name": "long-job", "budget_usd": 3}).json()
    secret = made["key"]
    o = openai.OpenAI(base_url=gw.url + "/v1", api_key=secret, max_retries=0)
    o.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}])
    gw.stop()
    gw2 = make_gateway()
    o2 = openai.OpenAI(base_url=gw2.url + "/v1", api_key=secret, max_retries=0)
    assert o2.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "y"}]).choices
    st = httpx.get(gw2.url + "/admin/status", headers=ADMIN).json()
    assert st["keys"]["long-job"]["budget_usd"] == 3.0
    db = (gw2.cfg.gateway.data_path / "agentdeck.db").read_bytes()
    assert secret.encode() not in db
