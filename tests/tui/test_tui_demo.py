"""`agentdeck demo --headless`: the whole demo without a terminal, as a user would run it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_headless_demo_runs_traffic_of_every_tier_and_a_failing_call(tmp_path: Path) -> None:
    env = {**os.environ, "HOME": str(tmp_path), "AGENTDECK_CONFIG": ""}
    env.pop("AGENTDECK_CONFIG")
    out = subprocess.run([sys.executable, "-m", "agentdeck", "demo", "--headless", "--duration", "11"],
                         capture_output=True, text=True, timeout=90, env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    text = out.stdout
    assert "agentdeck demo: 11 s" in text
    calls = int(text.split("calls", 1)[1].split("(", 1)[0])
    assert calls >= 20, text
    mix = text.split("tier mix", 1)[1].splitlines()[0]
    assert "fast" in mix and "balanced" in mix
    assert "400: 1" in text, "the scripted failing call (at 8 s) must show up"
    assert "failed calls   req_" in text
    assert not list(tmp_path.glob("**/agentdeck.db")), "the demo must not leave a database behind"


def test_demo_rejects_a_bad_duration_in_one_line() -> None:
    out = subprocess.run([sys.executable, "-m", "agentdeck", "demo", "--headless", "--duration", "-3"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0 and "--duration" in out.stderr
