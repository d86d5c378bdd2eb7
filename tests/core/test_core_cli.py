"""The command dispatcher: --config anywhere, one-line errors, no tracebacks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "agentdeck", *args], capture_output=True, text=True, timeout=60)


def test_config_before_or_after_the_command(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[gateway]\nport = 1\ndata_dir = "{tmp_path}"\n')
    for args in (("--config", str(cfg), "status"), ("status", "--config", str(cfg))):
        r = run(*args)
        assert r.returncode == 3 and "127.0.0.1:1" in r.stderr, r.stderr  # 3: gateway unreachable
        assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_unknown_command_and_flag_give_one_line() -> None:
    for args in (("serve", "--nope"), ("route",), ("bench", "--scenario", "warp")):
        r = run(*args)
        assert r.returncode == 2 and "Traceback" not in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert run("--help").returncode == 0
