"""Contract: the offline tools and the demo, checked from outside.

`agentdeck route --json`, `agentdeck diagnose suggest/log/list/export`, `agentdeck flaky` on a
tiny project (stable, broken, flaky test) with its exact JSON and exit codes,
`agentdeck mock-upstream` serving both protocols, and `agentdeck demo --headless`.
"""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest
from contract_support import (
    MOCK_LINE,
    Served,
    assert_one_clear_error,
    cli,
    cli_many,
    describe,
    isolated_env,
    write_config,
)

DEFAULT_TIERS = {"fast": "claude-haiku-4-5", "balanced": "claude-sonnet-4-5", "smart": "claude-opus-4-5"}
CATEGORIES = {"context", "model", "rules", "testing", "quality_gate"}
ROOT_CAUSES = {"timing", "dependency", "resource", "state", "randomness", "unknown"}


@pytest.fixture(scope="module")
def tools(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("tools")
    data = root / "data"
    cfg = write_config(root / "tools.toml", {"gateway": {"data_dir": str(data), "port": 0}})
    return {"root": root, "config": cfg, "data": data, "env": isolated_env(root / "home")}


@pytest.fixture(scope="module", autouse=True)
def demo(tools: dict[str, Any]) -> Iterator[subprocess.Popen[str]]:
    """`agentdeck demo --headless --duration 5`, started with the module so its 5 s overlap the other checks."""
    proc = subprocess.Popen([sys.executable, "-m", "agentdeck", "demo", "--headless", "--duration", "5"],
                            env=tools["env"], cwd=tools["root"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, text=True, start_new_session=True)
    yield proc
    if proc.poll() is None:
        proc.kill()
        proc.communicate(timeout=10)


# -- routing dry run -------------------------------------------------------------------
ROUTE_TASKS = [
    "fix the typo in the README",
    "design a distributed, fault-tolerant architecture for our payment system and analyse the trade-offs",
    "write unit tests for the parser module",
]


def test_route_json_shape(tools: dict[str, Any]) -> None:
    cases = [["route", "--json", t] for t in ROUTE_TASKS] + [["route", ROUTE_TASKS[0]]]
    results = cli_many((c, {"env": tools["env"], "cwd": tools["root"]}) for c in cases)
    tiers = set()
    for p in results[:-1]:
        assert p.returncode == 0, describe(p)
        out = json.loads(p.stdout)
        assert {"tier", "model", "rule"} <= set(out), out
        assert out["tier"] in DEFAULT_TIERS, out
        assert isinstance(out["model"], str) and isinstance(out["rule"], str) and out["rule"], out
        assert out["model"] == DEFAULT_TIERS[out["tier"]], out
        tiers.add(out["tier"])
    assert json.loads(results[0].stdout)["tier"] == "fast"
    assert len(tiers) >= 2, "every task routed to the same tier"
    human = results[-1]
    assert human.returncode == 0 and "fast" in human.stdout and "claude-haiku-4-5" in human.stdout, describe(human)


# -- diagnosis -------------------------------------------------------------------------
SUGGEST_TEXTS = [
    "the model used a deprecated API that was removed in version 3",
    "the agent ignored the rule in CLAUDE.md about never editing migrations",
    "all tests passed but the feature is broken in production because the tests mocked the database",
]


def test_diagnose_suggest_json_shape(tools: dict[str, Any]) -> None:
    results = cli_many((["diagnose", "suggest", "--json", t], {"env": tools["env"], "cwd": tools["root"]})
                       for t in SUGGEST_TEXTS)
    for p in results:
        assert p.returncode == 0, describe(p)
        out = json.loads(p.stdout)
        assert {"category", "confidence", "why"} <= set(out), out
        assert out["category"] in CATEGORIES, out
        assert isinstance(out["confidence"], float) and 0.0 <= out["confidence"] <= 1.0, out
        assert isinstance(out["why"], list) and out["why"] and all(isinstance(w, str) for w in out["why"]), out


def test_diagnose_log_list_export_round_trip(tools: dict[str, Any]) -> None:
    env, cwd, cfg = tools["env"], tools["root"], str(tools["config"])
    error = "contract-check: the agent used the v1 client removed in v2"
    p = cli(["diagnose", "log", "--config", cfg, "--error", error, "--category", "context",
             "--fix", "pasted the v2 migration guide", "--verification", "pytest green", "--result", "stuck"],
            env=env, cwd=cwd)
    assert p.returncode == 0, describe(p)
    listed, md, js, bad = cli_many([
        (["diagnose", "list", "--json", "--config", cfg], {"env": env, "cwd": cwd}),
        (["diagnose", "export", "--format", "md", "--config", cfg], {"env": env, "cwd": cwd}),
        (["diagnose", "export", "--format", "json", "--config", cfg], {"env": env, "cwd": cwd}),
        (["diagnose", "log", "--config", cfg, "--error", "x", "--category", "astrology", "--fix", "y"],
         {"env": env, "cwd": cwd}),
    ])
    assert listed.returncode == 0, describe(listed)
    assert error in json.dumps(json.loads(listed.stdout)), describe(listed)

    assert md.returncode == 0, describe(md)
    header = next((ln for ln in md.stdout.splitlines() if ln.lstrip().startswith("|") and "Date" in ln), None)
    assert header is not None, describe(md)
    cols = [c.strip() for c in header.strip().strip("|").split("|")]
    assert cols == ["Date", "Error", "Root Cause", "Fix Applied", "Verification", "Result"], cols
    row = next((ln for ln in md.stdout.splitlines() if ln.lstrip().startswith("|") and error in ln), None)
    assert row is not None, describe(md)
    cells = [c.strip() for c in row.strip().strip("|").split("|")]
    assert len(cells) == 6 and re.match(r"\d{4}-\d{2}-\d{2}", cells[0]), cells
    assert "pasted the v2 migration guide" in cells[3] and "pytest green" in cells[4], cells

    assert js.returncode == 0, describe(js)
    assert error in json.dumps(json.loads(js.stdout))
    assert_one_clear_error(bad, "astrology")

    # Entries live in the same SQLite database as everything else (data_dir/agentdeck.db).
    db = sqlite3.connect(tools["data"] / "agentdeck.db")
    try:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        assert "requests" in tables, tables
        found = False
        for t in tables:
            cols_t = [r[1] for r in db.execute(f"PRAGMA table_info('{t}')")]
            for c in cols_t:
                if db.execute(f"SELECT count(*) FROM '{t}' WHERE CAST(\"{c}\" AS TEXT) = ?", (error,)).fetchone()[0]:
                    found = True
        assert found, "the diagnosis is not in data_dir/agentdeck.db"
    finally:
        db.close()


def test_diagnose_wizard_in_a_plain_terminal(tools: dict[str, Any]) -> None:
    """The wizard on plain stdin: describe the error, accept every default, and the entry is recorded."""
    env, cwd, cfg = tools["env"], tools["root"], str(tools["config"])
    error = "contract-wizard: the agent used an old API version of the HTTP client"
    p = cli(["diagnose", "--config", cfg], env=env, cwd=cwd, stdin=error + "\n" + "\n" * 40, timeout=60)
    assert p.returncode == 0, describe(p)
    assert "Traceback" not in p.stderr, describe(p)
    for cat in ("context", "model", "rules", "testing", "quality_gate"):
        assert cat in p.stdout, f"the wizard never offered {cat}\n{describe(p)}"
    listed = cli(["diagnose", "list", "--json", "--config", cfg], env=env, cwd=cwd)
    assert error in listed.stdout, describe(listed)


# -- flaky runner ----------------------------------------------------------------------
FLAKY_PROJECT = textwrap.dedent('''
    import os
    from pathlib import Path

    MARKS = Path(__file__).parent / "marks"


    def test_stable():
        assert sum([1, 2, 3]) == 6


    def test_broken():
        assert 1 + 1 == 3, "always broken"


    def test_flaky():
        MARKS.mkdir(exist_ok=True)
        i = 0
        while True:  # a race-free run counter shared by every process the runner starts
            try:
                os.close(os.open(MARKS / f"run{i}", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
                break
            except FileExistsError:
                i += 1
        assert i % 2 == 1, f"run {i}: every other run fails"
''')


@pytest.fixture(scope="module")
def project(tools: dict[str, Any]) -> Path:
    proj = tools["root"] / "proj"
    (proj / "tests").mkdir(parents=True)
    (proj / "pytest.ini").write_text("[pytest]\n")
    (proj / "tests" / "test_proj.py").write_text(FLAKY_PROJECT)
    return proj


def test_flaky_json_shape_and_max_rate_exit_codes(tools: dict[str, Any], project: Path) -> None:
    """Same-order runs only (--no-diagnose keeps this fast); the plain form runs on the stable test alone."""
    out_all = tools["root"] / "flaky-all.json"
    out_stable = tools["root"] / "flaky-stable.json"
    cfg = str(tools["config"])
    every, only_stable = cli_many([
        (["flaky", "--config", cfg, "--runs", "10", "--json", str(out_all), "--max-rate", "0.0", "--no-diagnose"],
         {"env": tools["env"], "cwd": project, "timeout": 120}),
        (["flaky", "--config", cfg, "--runs", "5", "--json", str(out_stable), "--max-rate", "0.0", "--", "-k", "stable"],
         {"env": tools["env"], "cwd": project, "timeout": 120}),
    ])
    assert "Traceback" not in every.stderr, describe(every)
    assert every.returncode == 1, f"a failure rate above --max-rate must exit 1\n{describe(every)}"
    doc = json.loads(out_all.read_text())
    assert {"runs", "tests"} <= set(doc), doc.keys()
    assert doc["runs"] == 10
    by_name = {}
    for t in doc["tests"]:
        missing = {"nodeid", "runs", "failures", "failure_rate", "verdict", "root_cause", "evidence",
                   "recommendation"} - set(t)
        assert not missing, (missing, t)
        assert isinstance(t["nodeid"], str) and "::" in t["nodeid"], t
        assert isinstance(t["runs"], int) and isinstance(t["failures"], int) and 0 <= t["failures"] <= t["runs"], t
        assert isinstance(t["failure_rate"], float) and abs(t["failure_rate"] - t["failures"] / t["runs"]) < 1e-3, t
        assert t["verdict"] in {"stable", "flaky", "broken"}, t
        assert isinstance(t["evidence"], list) and all(isinstance(e, str) for e in t["evidence"]), t
        assert isinstance(t["recommendation"], str), t
        assert t["runs"] == 10, t
        by_name[t["nodeid"].rsplit("::", 1)[-1]] = t
    assert set(by_name) == {"test_stable", "test_broken", "test_flaky"}, list(by_name)
    stable, broken, flaky = by_name["test_stable"], by_name["test_broken"], by_name["test_flaky"]
    assert stable["nodeid"] == "tests/test_proj.py::test_stable"
    assert stable["verdict"] == "stable" and stable["failures"] == 0 and stable["root_cause"] is None
    assert broken["verdict"] == "broken" and broken["failures"] == broken["runs"] and broken["root_cause"] is None
    assert flaky["verdict"] == "flaky" and 0 < flaky["failures"] < flaky["runs"], flaky
    assert flaky["root_cause"] in ROOT_CAUSES, flaky

    assert "Traceback" not in only_stable.stderr, describe(only_stable)
    assert only_stable.returncode == 0, f"no rate above --max-rate: exit 0\n{describe(only_stable)}"
    doc2 = json.loads(out_stable.read_text())
    assert [t["nodeid"] for t in doc2["tests"]] == ["tests/test_proj.py::test_stable"], doc2
    assert doc2["runs"] == 5 and doc2["tests"][0]["verdict"] == "stable"


# -- mock provider and demo ------------------------------------------------------------
@pytest.fixture(scope="module")
def mocks(tools: dict[str, Any]) -> Iterator[tuple[Served, Served]]:
    env = tools["env"]
    ok = Served(["mock-upstream", "--port", "0", "--latency-ms", "1", "--token-ms", "1", "--rate-429", "0",
                 "--rate-5xx", "0"], env, MOCK_LINE, tools["root"] / "logs", "mock-ok")
    try:
        always_429 = Served(["mock-upstream", "--port", "0", "--rate-429", "1"], env, MOCK_LINE,
                            tools["root"] / "logs", "mock-429")
    except BaseException:
        ok.stop()
        raise
    yield ok, always_429
    ok.stop(), always_429.stop()


def test_mock_upstream_serves_both_protocols(mocks: tuple[Served, Served]) -> None:
    ok, always_429 = mocks
    o = openai.OpenAI(base_url=ok.url + "/v1", api_key="sk-mock", max_retries=0, timeout=20)
    assert o.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]).choices
    assert any(c.choices and c.choices[0].delta.content for c in o.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=True))
    assert o.responses.create(model="gpt-4o", input="hi").output_text
    a = anthropic.Anthropic(base_url=ok.url, api_key="sk-ant-mock", max_retries=0, timeout=20)
    assert a.messages.create(model="claude-haiku-4-5", max_tokens=50, messages=[{"role": "user", "content": "hi"}]).content
    kinds = [e.type for e in a.messages.create(model="claude-haiku-4-5", max_tokens=50, stream=True,
                                               messages=[{"role": "user", "content": "hi"}])]
    assert kinds[-1] == "message_stop"
    r = httpx.post(always_429.url + "/v1/chat/completions", headers={"Authorization": "Bearer sk-mock"},
                   json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}, timeout=20)
    assert r.status_code == 429


def test_demo_headless_prints_a_summary(demo: subprocess.Popen[str]) -> None:
    out, err = demo.communicate(timeout=90)
    p = subprocess.CompletedProcess(demo.args, demo.returncode, out, err)
    assert p.returncode == 0, describe(p)
    assert "Traceback" not in p.stderr, describe(p)
    assert len(p.stdout.strip().splitlines()) >= 2, describe(p)
