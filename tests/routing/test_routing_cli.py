"""`agentdeck route` and `agentdeck savings` as a user runs them: real subprocesses, a real database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import pytest

from agentdeck.store import connect, db_path


def agentdeck(*args: str, config: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AGENTDECK_CONFIG": str(config), "COLUMNS": "140", "NO_COLOR": "1"}
    return subprocess.run([sys.executable, "-m", "agentdeck", *args], capture_output=True, text=True,
                          env=env, input=stdin, timeout=60)


def test_route_json_is_the_contract_shape(config_file: Callable[[str], Path]) -> None:
    cfg = config_file("")
    p = agentdeck("route", "--json", "grep for TODOs in the payments module", config=cfg)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert set(out) == {"tier", "model", "rule", "reason"}
    assert (out["tier"], out["model"], out["rule"]) == ("fast", "claude-haiku-4-5", "search")
    p = agentdeck("route", "--json", "--protocol", "openai", "--context-tokens", "150000", "read", "the", "logs", config=cfg)
    out = json.loads(p.stdout)
    assert (out["tier"], out["model"], out["rule"]) == ("balanced", "gpt-4o", "large-context")


def test_route_plain_text_with_custom_tiers_rules_and_downgrade(config_file: Callable[[str], Path]) -> None:
    cfg = config_file(
        '[routing]\ndowngrade_at = 0.5\n\n'
        '[routing.tiers]\nsmart = { anthropic = "claude-opus-4-1", openai = "gpt-5" }\n\n'
        '[[routing.rules]]\nname = "ledger"\ntier = "smart"\nany = ["ledger"]\n'
    )
    p = agentdeck("route", "fix a typo in the ledger docs", config=cfg)
    assert p.returncode == 0, p.stderr
    lines = dict(line.split(None, 1) for line in p.stdout.splitlines())
    assert lines["tier"] == "smart" and lines["model"] == "claude-opus-4-1 (anthropic)" and lines["rule"] == "ledger"
    assert "ledger" in lines["reason"]
    p = agentdeck("route", "--budget-share", "0.6", "-", config=cfg, stdin="Design the sharding architecture")
    lines = dict(line.split(None, 1) for line in p.stdout.splitlines())
    assert lines["tier"] == "balanced" and lines["rule"] == "design+downgrade" and "from smart" in lines["downgraded"]


def test_route_errors_are_one_line(config_file: Callable[[str], Path]) -> None:
    bad = config_file('[[routing.rules]]\nname = "x"\ntier = "opus"\nany = ["y"]\n')
    p = agentdeck("route", "anything", config=bad)
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert p.stderr.strip().count("\n") == 0 and "routing.rules[0].tier" in p.stderr
    p = agentdeck("route", "--model", "llama-99", "x", config=config_file(""))
    assert p.returncode == 2 and "unknown model 'llama-99'" in p.stderr and "Traceback" not in p.stderr


def test_savings_reads_the_database(tmp_path: Path, config_file: Callable[[str], Path]) -> None:
    cfg = config_file("")
    conn = connect(db_path(tmp_path / "data"))
    now = time.time()
    rows = [("fast", "search", 0.00125, 0.015, None)] * 6 + [("balanced", "feature", 0.015, 0.015, None)] * 3 \
        + [("smart", "design", 0.075, 0.015, None), ("balanced", "search+escalate", 0.016, 0.015, '["fast->balanced: truncated"]')]
    for i, (tier, rule, cost, base, esc) in enumerate(rows):
        conn.execute(
            "INSERT INTO requests (id, ts, key, protocol, endpoint, model_requested, model, provider, tier, rule, status,"
            " stream, input_tokens, output_tokens, cost_usd, baseline_cost_usd, escalations)"
            " VALUES (?, ?, 'dev', 'openai', '/v1/chat/completions', 'auto', 'm', 'openai', ?, ?, 200, 0, 4000, 1000, ?, ?, ?)",
            (f"r{i}", now - 600 - i, tier, rule, cost, base, esc))
    conn.commit()
    conn.close()
    p = agentdeck("savings", "--json", config=cfg)
    assert p.returncode == 0, p.stderr
    d = json.loads(p.stdout)
    assert d["requests"] == 11
    assert d["cost_usd"] == round(6 * 0.00125 + 3 * 0.015 + 0.075 + 0.016, 6)
    assert d["baseline_usd"] == round(11 * 0.015, 6)
    assert d["projection"]["work_days"] == 22 and d["projection"]["days_observed"] == 1.0
    assert d["projection"]["cost_per_month"] == pytest.approx(d["cost_usd"] * 22, abs=1e-5)
    assert {t["tier"]: t["escalated"] for t in d["tiers"]}["fast"] == 1
    assert d["rules"][0] == {"rule": "search", "requests": 7, "escalated": 1, "escalation_rate": round(1 / 7, 4),
                             "reasons": {"truncated": 1}, "cost_usd": round(6 * 0.00125 + 0.016, 6)}
    p = agentdeck("savings", "--since", "7d", config=cfg)
    assert p.returncode == 0, p.stderr
    assert "Routing savings, last 7d" in p.stdout and "Escalation rate by rule" in p.stdout
    assert "Projection at the observed rate" in p.stdout and "/month" in p.stdout
    assert "search" in p.stdout and "truncated 1" in p.stdout
    p = agentdeck("savings", "--since", "1s", config=cfg)
    assert p.returncode == 0 and "No requests in the last 1s" in p.stdout


def test_savings_bad_flag_and_missing_database(tmp_path: Path, config_file: Callable[[str], Path]) -> None:
    cfg = config_file("")
    p = agentdeck("savings", "--since", "yesterday", config=cfg)
    assert p.returncode == 2 and "--since" in p.stderr and "Traceback" not in p.stderr
    p = agentdeck("savings", config=cfg)
    assert p.returncode == 0 and "not created yet" in p.stdout
    assert not db_path(tmp_path / "data").exists()
