"""`agentdeck stop / resume / status`: the right admin calls, one clear line, and a clean error with no gateway."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agentdeck.cli.common import write_runtime
from agentdeck.cli.status import render
from agentdeck.config import load_config

from budget_support import GatewayDouble, agentdeck


@pytest.mark.parametrize("args", [
    ("stop", "--reason", "loop"),
    ("resume",),
    ("status",),
    ("status", "--json"),
    ("run", "--", "true"),
])
def test_no_gateway_gives_one_clear_line(cli: Any, args: tuple[str, ...]) -> None:
    r = cli(*args)  # the config points at port 1, and no gateway left a runtime file
    assert r.returncode == 3  # gateway unreachable (CONTRACT.md exit codes)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("agentdeck: error: cannot reach the gateway at http://127.0.0.1:1")
    assert "Traceback" not in r.stderr and r.stdout == ""


def test_no_gateway_from_a_real_process(cli_env: dict[str, str]) -> None:
    r = agentdeck(cli_env, "stop", "--reason", "x")
    assert r.returncode == 3 and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


def test_stop_requires_a_reason(cli: Any) -> None:
    r = cli("stop")
    assert r.returncode == 2 and "--reason" in r.stderr and "Traceback" not in r.stderr


def test_stop_and_resume_find_the_local_gateway_without_flags(cli: Any, cli_env: dict[str, str],
                                                               gateway: GatewayDouble) -> None:
    cfg = load_config(cli_env["AGENTDECK_CONFIG"])
    gateway.token = "runtime-token"  # only the runtime file knows it
    cfgfile = Path(cli_env["AGENTDECK_CONFIG"])
    cfgfile.write_text(cfgfile.read_text().replace('admin_token = "admintok"', 'admin_token = ""'))
    write_runtime(cfg, gateway.url, "runtime-token")
    assert (cfg.gateway.data_path / "gateway.json").stat().st_mode & 0o777 == 0o600

    r = cli("stop", "--reason", "3am runaway loop", "--key", "ci")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == (f"STOPPED key 'ci' at {gateway.url}: 3am runaway loop "
                                "(lift with `agentdeck resume --key ci`)")
    method, path, body, auth = gateway.calls[-1]
    assert (method, path, auth) == ("POST", "/admin/stop", "Bearer runtime-token")
    assert body == {"reason": "3am runaway loop", "key": "ci", "actor": "cli"}

    r = cli("stop", "--reason", "everything")
    assert r.returncode == 0 and r.stdout.startswith("STOPPED all traffic")
    r = cli("resume")
    assert r.returncode == 0
    assert r.stdout.strip().startswith(f"RESUMED all traffic at {gateway.url} (still stopped: ci")
    assert gateway.calls[-1][1:3] == ("/admin/resume", {"key": None, "actor": "cli"})
    r = cli("resume", "--key", "ci")
    assert r.stdout.strip() == f"RESUMED key 'ci' at {gateway.url}"
    r = cli("resume", "--key", "ci")
    assert "was not stopped" in r.stdout


def test_wrong_admin_token_is_one_line(cli: Any, gateway: GatewayDouble) -> None:
    gateway.token = "other"
    r = cli("status", "--url", gateway.url)
    assert r.returncode == 2 and "refused the admin token" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_status_human_and_json(cli: Any, gateway: GatewayDouble) -> None:
    r = cli("status", "--url", gateway.url)
    assert r.returncode == 0, r.stderr
    out = r.stdout.splitlines()
    assert out[0].startswith(f"LIVE     {gateway.url}  (up 1h06m, 2 in flight)")
    assert "60 min $1.50 / $10.00 (15%)" in out[1] and "24 h $4.00 / $50.00 (8%)" in out[1]
    assert "reserved $0.25" in out[1]
    assert "dev $2.00/$25.00" in r.stdout
    assert "anthropic" in r.stdout and "429s 3" in r.stdout
    r = cli("status", "--json", "--url", gateway.url)
    assert json.loads(r.stdout)["budget"] == {"hourly_usd": 10.0, "daily_usd": 50.0}


def test_status_render_stopped() -> None:
    st: dict[str, Any] = {"stopped": True, "stop_reason": "daily budget $50.00 reached", "stopped_keys": {"ci": "loop"},
                          "spend": {"hour_usd": 0.004, "day_usd": 50.0}, "budget": {"hourly_usd": 0, "daily_usd": 50.0}}
    text = render("http://x", st)
    assert text.splitlines()[0] == "STOPPED  http://x"
    assert "reason   daily budget $50.00 reached" in text
    assert "stopped  ci: loop" in text
    assert "60 min $0.004 (no limit)" in text and "24 h $50.00 / $50.00 (100%)" in text
