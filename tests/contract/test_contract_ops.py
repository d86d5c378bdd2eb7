"""Contract: operating a running gateway from the shell, and what survives a restart.

`agentdeck status [--json]`, `stop --reason [--key]`, `resume [--key]` against a served gateway
(via --url with AGENTDECK_ADMIN_TOKEN, and via the runtime file with no flags at all),
`agentdeck run -- python script.py` (the SDKs find the gateway from the environment alone),
the global budget's 403, SIGTERM/SIGINT stopping cleanly without losing queued records, and
the emergency stop surviving a restart.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from contract_support import (
    ADMIN_TOKEN,
    KEY_DEV,
    KEY_OTHER,
    PROVIDER_KEY_ANTHROPIC,
    PROVIDER_KEY_OPENAI,
    admin,
    assert_one_clear_error,
    auth,
    chat_body,
    cli,
    cli_many,
    describe,
    gateway_doc,
    isolated_env,
    messages_body,
    serve_gateway,
    write_config,
)

STATUS_KEYS = {"stopped", "stop_reason", "spend", "budget", "providers"}


def _status(url: str) -> dict[str, Any]:
    return httpx.get(url + "/admin/status", headers=admin(), timeout=10).json()


def _chat(url: str, key: str = KEY_DEV) -> httpx.Response:
    return httpx.post(url + "/v1/chat/completions", json=chat_body(), headers=auth(key), timeout=30)


def _msg(url: str, key: str = KEY_DEV) -> httpx.Response:
    return httpx.post(url + "/v1/messages", json=messages_body(),
                      headers={"x-api-key": key, "anthropic-version": "2023-06-01"}, timeout=30)


@pytest.fixture
def by_runtime(gw_clean: Any, tmp_path: Path) -> dict[str, str]:
    """No flags at all: the config comes from $AGENTDECK_CONFIG, the URL and token from its runtime file."""
    return isolated_env(tmp_path / "home-rt", AGENTDECK_CONFIG=str(gw_clean.config))


@pytest.fixture
def by_url(gw_clean: Any, tmp_path: Path) -> dict[str, str]:
    """No config at all: --url on the command line, the admin token from AGENTDECK_ADMIN_TOKEN."""
    return isolated_env(tmp_path / "home-url", AGENTDECK_ADMIN_TOKEN=ADMIN_TOKEN)


def test_status_json_via_runtime_file_and_via_url(gw_clean: Any, by_runtime: dict[str, str], by_url: dict[str, str],
                                                  tmp_path: Path) -> None:
    a, b, human = cli_many([
        (["status", "--json"], {"env": by_runtime, "cwd": tmp_path}),
        (["status", "--json", "--url", gw_clean.url], {"env": by_url, "cwd": tmp_path}),
        (["status"], {"env": by_runtime, "cwd": tmp_path}),
    ])
    for p in (a, b):
        assert p.returncode == 0, describe(p)
        st = json.loads(p.stdout)
        assert STATUS_KEYS <= set(st), st
        assert st["stopped"] is False and st["stop_reason"] is None
        assert {"hour_usd", "day_usd"} <= set(st["spend"]) and {"hourly_usd", "daily_usd"} <= set(st["budget"])
        assert "anthropic" in st["providers"] and "rps_limit" in st["providers"]["anthropic"]
    assert human.returncode == 0, describe(human)
    for word in ("anthropic", "openai", "tight_openai", "$"):  # per-provider limits, spend vs budgets
        assert word in human.stdout, describe(human)


def test_stop_and_resume_via_runtime_file_no_flags(gw_clean: Any, by_runtime: dict[str, str], tmp_path: Path) -> None:
    p = cli(["stop", "--reason", "cli contract 42"], env=by_runtime, cwd=tmp_path)
    assert p.returncode == 0, describe(p)
    st = _status(gw_clean.url)
    assert st["stopped"] is True and st["stop_reason"] == "cli contract 42"
    r = _chat(gw_clean.url)
    assert r.status_code == 403 and "cli contract 42" in r.json()["error"]["message"]
    p = cli(["status", "--json"], env=by_runtime, cwd=tmp_path)
    assert json.loads(p.stdout)["stopped"] is True, describe(p)
    p = cli(["resume"], env=by_runtime, cwd=tmp_path)
    assert p.returncode == 0, describe(p)
    assert _status(gw_clean.url)["stopped"] is False
    assert _chat(gw_clean.url).status_code == 200


def test_stop_and_resume_one_key_via_url(gw_clean: Any, by_url: dict[str, str], tmp_path: Path) -> None:
    p = cli(["stop", "--reason", "only other", "--key", "other", "--url", gw_clean.url], env=by_url, cwd=tmp_path)
    assert p.returncode == 0, describe(p)
    assert _chat(gw_clean.url, KEY_OTHER).status_code == 403
    assert _msg(gw_clean.url, KEY_OTHER).status_code == 403
    assert _chat(gw_clean.url, KEY_DEV).status_code == 200
    assert _status(gw_clean.url)["stopped"] is False
    p = cli(["resume", "--key", "other", "--url", gw_clean.url], env=by_url, cwd=tmp_path)
    assert p.returncode == 0, describe(p)
    assert _chat(gw_clean.url, KEY_OTHER).status_code == 200


def test_wrong_admin_token_is_one_clear_line(gw_clean: Any, tmp_path: Path) -> None:
    env = isolated_env(tmp_path / "home-bad", AGENTDECK_ADMIN_TOKEN="not-the-token")
    cases = [["status", "--url", gw_clean.url], ["stop", "--reason", "x", "--url", gw_clean.url]]
    for p in cli_many((c, {"env": env, "cwd": tmp_path}) for c in cases):
        assert_one_clear_error(p)
    assert _status(gw_clean.url)["stopped"] is False


SCRIPT = textwrap.dedent('''
    """Calls the gateway the way tools do, from the environment alone (the anthropic SDK's import is slow
    on a loaded machine, so the Anthropic call is made as that SDK makes it: base URL + /v1/messages, x-api-key
    or a bearer token)."""
    import json, os, sys, urllib.request
    out = {k: os.environ.get(k) for k in ("ANTHROPIC_BASE_URL", "OPENAI_BASE_URL", "ANTHROPIC_API_KEY",
                                           "ANTHROPIC_AUTH_TOKEN", "OPENAI_API_KEY")}
    if sys.argv[1:] == ["sdk"]:
        import openai
        o = openai.OpenAI(max_retries=0, timeout=30)
        out["openai_model"] = o.chat.completions.create(model="fast", messages=[{"role": "user", "content": "hi"}]).model
    else:
        req = urllib.request.Request(os.environ["OPENAI_BASE_URL"].rstrip("/") + "/chat/completions",
            data=json.dumps({"model": "fast", "messages": [{"role": "user", "content": "hi"}]}).encode(),
            headers={"Authorization": "Bearer " + os.environ["OPENAI_API_KEY"], "content-type": "application/json"})
        out["openai_model"] = json.load(urllib.request.urlopen(req, timeout=30))["model"]
    headers = {"anthropic-version": "2023-06-01", "content-type": "application/json"}
    if os.environ.get("ANTHROPIC_API_KEY"):
        headers["x-api-key"] = os.environ["ANTHROPIC_API_KEY"]
    else:
        headers["Authorization"] = "Bearer " + os.environ["ANTHROPIC_AUTH_TOKEN"]
    req = urllib.request.Request(os.environ["ANTHROPIC_BASE_URL"].rstrip("/") + "/v1/messages", headers=headers,
        data=json.dumps({"model": "fast", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]}).encode())
    out["anthropic_model"] = json.load(urllib.request.urlopen(req, timeout=30))["model"]
    print("RESULT " + json.dumps(out))
''')


def test_run_points_sdks_at_the_gateway(gw_clean: Any, by_runtime: dict[str, str], by_url: dict[str, str],
                                        tmp_path: Path) -> None:
    """Both ways at once: no flags (runtime file), and --key NAME --url U with AGENTDECK_ADMIN_TOKEN."""
    script = tmp_path / "script.py"
    script.write_text(SCRIPT)
    results = cli_many([
        (["run", "--", sys.executable, str(script), "sdk"], {"env": by_runtime, "cwd": tmp_path, "timeout": 90}),
        (["run", "--key", "dev", "--url", gw_clean.url, "--", sys.executable, str(script)],
         {"env": by_url, "cwd": tmp_path, "timeout": 90}),
    ])
    for p in results:
        assert p.returncode == 0, describe(p)
        line = next((ln for ln in p.stdout.splitlines() if ln.startswith("RESULT ")), None)
        assert line is not None, describe(p)
        out = json.loads(line[len("RESULT "):])
        assert out["ANTHROPIC_BASE_URL"].rstrip("/") == gw_clean.url
        assert out["OPENAI_BASE_URL"].rstrip("/") == gw_clean.url + "/v1"
        key = out["OPENAI_API_KEY"]
        assert key and key == (out["ANTHROPIC_API_KEY"] or out["ANTHROPIC_AUTH_TOKEN"])
        assert key not in (PROVIDER_KEY_OPENAI, PROVIDER_KEY_ANTHROPIC)
        assert out["openai_model"] == "gpt-4o-mini" and out["anthropic_model"] == "claude-haiku-4-5"


# -- a second gateway: a tiny global budget, a restart, clean signals -------------------
HOURLY_USD = 0.002  # a handful of small calls


@pytest.fixture(scope="module")
def g2(tmp_path_factory: pytest.TempPathFactory, contract_mock: Any) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("g2")
    data = root / "data"
    doc = gateway_doc(data, contract_mock.url, budget={"hourly_usd": HOURLY_USD, "daily_usd": 5000.0},
                      gateway={"store_flush_interval_s": 1.0})
    cfg = write_config(root / "g2.toml", doc)
    env = isolated_env(root / "home", AGENTDECK_CONFIG=str(cfg))
    yield {"root": root, "config": cfg, "env": env, "data": data}


def test_global_budget_never_exceeded_then_403_both_protocols(g2: dict[str, Any]) -> None:
    """20 concurrent calls against a budget that holds a handful: spend stays inside it, the rest get 403."""
    from concurrent.futures import ThreadPoolExecutor

    served = serve_gateway(g2["config"], g2["env"], g2["root"] / "logs", "g2-budget")
    body = messages_body("claude-haiku-4-5", max_tokens=60)
    headers = {"x-api-key": KEY_DEV, "anthropic-version": "2023-06-01"}
    try:
        with httpx.Client(base_url=served.url, timeout=30) as c:
            with ThreadPoolExecutor(max_workers=10) as ex:
                burst = list(ex.map(lambda _: c.post("/v1/messages", json=body, headers=headers), range(20)))
            a = None
            for _ in range(40):  # spend what is left until the budget refuses
                a = c.post("/v1/messages", json=body, headers=headers)
                if a.status_code != 200:
                    break
            # Same max_tokens on a dearer model: its worst case cannot fit either.
            r = c.post("/v1/chat/completions", json=chat_body("gpt-4.1", max_tokens=60), headers=auth(KEY_DEV))
            st = c.get("/admin/status", headers=admin()).json()
    finally:
        assert served.stop(signal.SIGINT) == 0, served.output()
    codes = sorted({x.status_code for x in burst})
    assert codes == [200, 403], [x.text[:200] for x in burst]
    assert st["spend"]["hour_usd"] <= HOURLY_USD + 1e-9, st["spend"]
    assert a is not None and a.status_code == 403 and a.headers.get("x-should-retry") == "false", a.text
    aerr = a.json()
    assert aerr["type"] == "error" and "hourly" in aerr["error"]["message"].lower(), aerr
    assert r.status_code == 403 and r.headers.get("x-should-retry") == "false", r.text
    err = r.json()["error"]
    assert err["code"] == "budget_exceeded", err
    assert "hourly" in err["message"].lower(), err
    assert any(w in err["message"].lower() for w in ("reset", "frees", "free up", " at ")), err
    assert "Traceback" not in served.output()


def test_stop_survives_restart_and_sigterm_loses_nothing(g2: dict[str, Any], tmp_path: Path) -> None:
    logs = g2["root"] / "logs"
    served = serve_gateway(g2["config"], g2["env"], logs, "g2-first")
    try:
        counted = httpx.post(served.url + "/v1/messages/count_tokens", timeout=30,
                             json={"model": "claude-haiku-4-5", "messages": [{"role": "user", "content": "hi"}]},
                             headers={"x-api-key": KEY_DEV, "anthropic-version": "2023-06-01"})
        assert counted.status_code == 200, counted.text
        rid = counted.headers["x-agentdeck-request-id"]
        p = cli(["stop", "--reason", "survive the restart", "--config", str(g2["config"])], env=g2["env"], cwd=tmp_path)
        assert p.returncode == 0, describe(p)
    finally:
        code = served.stop(signal.SIGTERM)
    assert code == 0, served.output()
    assert "Traceback" not in served.output()
    # Nothing queued for the database lost (the flush interval is 1 s; SIGTERM came sooner).
    db = sqlite3.connect(g2["data"] / "agentdeck.db")
    try:
        assert db.execute("SELECT count(*) FROM requests WHERE id = ?", (rid,)).fetchone()[0] == 1
    finally:
        db.close()

    again = serve_gateway(g2["config"], g2["env"], logs, "g2-second")
    try:
        st = _status(again.url)
        assert st["stopped"] is True and st["stop_reason"] == "survive the restart", st
        r = _chat(again.url)
        assert r.status_code == 403 and r.json()["error"]["code"] == "agentdeck_stopped"
        p = cli(["resume"], env=g2["env"], cwd=tmp_path)
        assert p.returncode == 0, describe(p)
        assert _status(again.url)["stopped"] is False
    finally:
        assert again.stop(signal.SIGTERM) == 0, again.output()
