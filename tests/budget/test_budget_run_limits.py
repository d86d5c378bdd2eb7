"""`agentdeck run --timeout` (the job-level deadline) and `--max-requests` (the session's sample limit).

The deadline is tested through the real command against a real `agentdeck serve`: a `sleep 600`
session (with a grandchild) ends at the deadline, the run exits 124 and says why, and the
gateway's stop history records the reason under the session's name. The request limit is
tested in the registry (counting, restore after a restart, the store's columns and counts) and
over HTTP against a real gateway with the official SDK: calls past N get 403
`session_request_limit` with `x-should-retry: false`.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import httpx
import openai
import pytest
from deck_support import ADMIN_TOKEN, serve_process, write_serve_config

from agentdeck.budget.sessions import SessionRegistry
from agentdeck.bus import Bus, RequestCompleted
from agentdeck.cli.run import format_duration, parse_duration, timeout_reason
from agentdeck.sim import MockServer
from agentdeck.store import Store, db_path

from budget_support import GatewayDouble, agentdeck


# -- durations ------------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "seconds"), [
    ("90", 90.0), ("90s", 90.0), ("15m", 900.0), ("1h30m", 5400.0), ("1.5h", 5400.0), ("500ms", 0.5),
    ("2d", 172800.0), (" 2m 30s ", 150.0), ("0.25", 0.25),
])
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "0", "-5", "15x", "m", "1h-3m", "nan", "inf", "s15", "1h 30"])
def test_parse_duration_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_format_duration_names_the_deadline_as_typed() -> None:
    assert [format_duration(s) for s in (2, 2.5, 900, 5400, 86400 + 60)] == ["2s", "2.5s", "15m", "1h30m", "1d1m"]
    assert timeout_reason(900) == "timeout: agentdeck run --timeout 15m reached"


def test_bad_flags_are_one_line(cli: Any, gateway: GatewayDouble) -> None:
    r = cli("run", "--url", gateway.url, "--timeout", "soon", "--", "true")
    assert r.returncode == 2 and r.stderr.strip().startswith("agentdeck: error: --timeout: not a duration"), r.stderr
    r = cli("run", "--url", gateway.url, "--max-requests", "0", "--", "true")
    assert r.returncode == 2 and "--max-requests: must be a positive number" in r.stderr, r.stderr
    assert not [c for c in gateway.calls if c[1] == "/admin/sessions"]  # no session for a run that cannot start


# -- the registry ---------------------------------------------------------------------------
def test_take_request_counts_and_refuses_past_the_limit() -> None:
    reg = SessionRegistry()
    name, _ = reg.create("sample", max_requests=3)
    free, _ = reg.create("free")
    assert reg.get(name) is not None and reg.get(name).max_requests == 3  # type: ignore[union-attr]
    assert [reg.take_request(name) for _ in range(5)] == [True, True, True, False, False]
    assert reg.used(name) == 3  # refused calls are not counted
    assert all(reg.take_request(free) for _ in range(100))  # no limit
    assert reg.take_request("dev")  # a configured key, not a session
    assert reg.get(name).to_dict()["max_requests"] == 3  # type: ignore[union-attr]
    reg.end(name)
    assert reg.used(name) == 0 and reg.take_request(name)  # an ended session is no longer counted


def test_restore_keeps_the_limit_and_what_was_used() -> None:
    reg = SessionRegistry()
    reg.restore("s", "ab" * 32, None, None, 1.0, max_requests=5, used=4)
    assert reg.take_request("s") and not reg.take_request("s")
    reg.restore("t", "cd" * 32, "dev", 2.0, 1.0)
    assert reg.get("t").max_requests is None and reg.take_request("t")  # type: ignore[union-attr]


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "3"])
def test_max_requests_must_be_a_positive_integer(bad: Any) -> None:
    with pytest.raises(ValueError, match="max_requests"):
        SessionRegistry().create("x", max_requests=bad)


async def test_store_persists_the_limit_and_counts_calls_per_session(tmp_path: Path) -> None:
    bus = Bus()
    store = Store(db_path(tmp_path / "data"), bus, flush_interval_s=0.05)
    await store.open()
    try:
        await store.record_session("capped", "ab" * 32, "dev", 1.5, 10.0, max_requests=7)
        await store.record_session("open", "cd" * 32, None, None, 11.0)
        rows = {r["name"]: r for r in await store.sessions()}
        assert rows["capped"]["max_requests"] == 7 and rows["open"]["max_requests"] is None

        def call(i: int, session: str | None, status: int = 200, error: str | None = None) -> RequestCompleted:
            return RequestCompleted(id=f"r{i}", key="dev", session=session, protocol="openai", endpoint="chat",
                                    model_requested="gpt-4o-mini", model="gpt-4o-mini", provider="openai", tier=None,
                                    rule=None, status=status, stream=False, error=error)

        for i, ev in enumerate([call(1, "capped"), call(2, "capped"), call(3, "capped", 500, "upstream"),
                                call(4, "capped", 403, "session_request_limit"), call(5, None), call(6, "open")]):
            bus.publish(ev)
        counts = await store.session_request_counts()
        assert counts == {"capped": 3, "open": 1}  # the refusal for the limit itself is not a call taken
    finally:
        await store.close()


# -- the request limit over HTTP, against a real gateway --------------------------------------
def test_calls_past_max_requests_are_refused_403(make_gateway: Any) -> None:
    gt = make_gateway()
    name, secret = gt.gateway.sessions.create("sample-run", max_requests=2)
    client = openai.OpenAI(base_url=gt.url + "/v1", api_key=secret, max_retries=0, timeout=20)
    for _ in range(2):
        r = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
        assert r.choices[0].message.content
    for _ in range(2):
        with pytest.raises(openai.PermissionDeniedError) as e:
            client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
        assert e.value.status_code == 403
        assert e.value.response.headers["x-should-retry"] == "false"
        assert e.value.code == "session_request_limit" and "--max-requests" in e.value.message
    assert gt.gateway.sessions.used(name) == 2


# -- --max-requests in the command -----------------------------------------------------------
def test_run_asks_for_the_limit_and_says_so(cli_env: dict[str, str], gateway: GatewayDouble) -> None:
    r = agentdeck(cli_env, "run", "--url", gateway.url, "--max-requests", "25", "--timeout", "1h", "--", "true")
    assert r.returncode == 0, r.stderr
    body = [c for c in gateway.calls if c[1] == "/admin/sessions"][0][2]
    assert body == {"name": "true", "budget_usd": None, "key": None, "max_requests": 25}
    assert r.stderr.strip() == f"agentdeck: session 'true' via {gateway.url}, timeout 1h, at most 25 requests"


def test_run_refuses_to_start_when_the_gateway_ignores_the_limit(cli_env: dict[str, str], gateway: GatewayDouble,
                                                                 tmp_path: Path) -> None:
    gateway.confirm_max_requests = False  # an older gateway: the field is dropped, the limit would not hold
    marker = tmp_path / "ran"
    r = agentdeck(cli_env, "run", "--url", gateway.url, "--max-requests", "3", "--", "touch", str(marker))
    assert r.returncode == 2 and not marker.exists()
    assert "did not confirm the limit of 3 requests" in r.stderr and "Traceback" not in r.stderr


# -- --timeout through the real command against a real gateway --------------------------------
@pytest.fixture
def served(tmp_path: Path, mock_server: MockServer) -> Iterator[tuple[str, Path]]:
    cfg = write_serve_config(tmp_path / "serve.toml", tmp_path / "gw-data", mock_server.url + "/v1")
    proc, url = serve_process(cfg)
    try:
        yield url, cfg
    finally:
        proc.terminate()
        try:
            proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate(timeout=10)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def test_timeout_ends_the_session_and_the_gateway_records_why(served: tuple[str, Path], tmp_path: Path) -> None:
    url, cfg = served
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AGENTDECK_", "ANTHROPIC_", "OPENAI_"))}
    env["HOME"] = str(tmp_path / "home")
    pidfile = tmp_path / "grandchild"
    # A shell (the session's direct child) with a grandchild `sleep 600` in the same process group.
    script = f"sleep 600 & echo $! > {pidfile}; wait"
    t0 = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "agentdeck", "run", "--config", str(cfg), "--url", url, "--key", "nightly",
                        "--timeout", "2s", "--kill-grace", "2", "--", "sh", "-c", script],
                       env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    elapsed = time.monotonic() - t0
    assert r.returncode == 124, r.stderr
    assert elapsed < 50  # ended at the deadline, not after sleep 600
    assert "timeout: agentdeck run --timeout 2s reached: ending session 'nightly' (SIGTERM, SIGKILL after 2s)" in r.stderr
    assert re.search(r"session 'nightly' ended: timeout: agentdeck run --timeout 2s reached \(command exit \d+\); "
                     r"exit 124", r.stderr), r.stderr
    grandchild = int(pidfile.read_text())
    deadline = time.monotonic() + 5
    while _alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(grandchild)  # the whole group ended, not only the shell
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    status = httpx.get(url + "/admin/status", headers=admin, timeout=10).json()
    assert status["stopped_keys"].get("nightly") == "timeout: agentdeck run --timeout 2s reached"
    assert status["stopped"] is False  # only the session, nobody else
    stops = httpx.get(url + "/admin/history", headers=admin, timeout=10).json()["stops"]
    mine = [s for s in stops if s.get("key") == "nightly"]
    assert mine and mine[0]["reason"] == "timeout: agentdeck run --timeout 2s reached", json.dumps(stops)
    assert mine[0]["actor"] == "cli" and mine[0]["stopped"]


def test_a_command_that_finishes_in_time_keeps_its_exit_code(served: tuple[str, Path], tmp_path: Path) -> None:
    url, cfg = served
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AGENTDECK_", "ANTHROPIC_", "OPENAI_"))}
    r = subprocess.run([sys.executable, "-m", "agentdeck", "run", "--config", str(cfg), "--url", url,
                        "--timeout", "10m", "--", "sh", "-c", "exit 5"],
                       env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode == 5, r.stderr
    assert "reached" not in r.stderr
    st = httpx.get(url + "/admin/status", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=10).json()
    assert not st["stopped_keys"]


def test_gemini_tools_get_the_gateway_and_the_session_key() -> None:
    from agentdeck.cli.run import session_env

    env = session_env({"GOOGLE_API_KEY": "real-google-key", "PATH": "/bin"}, "http://127.0.0.1:8787/", "s", "adk-s-k",
                      ["gemini", "-p", "hi"])
    assert env["GOOGLE_GEMINI_BASE_URL"] == "http://127.0.0.1:8787"  # no version: the SDK adds /v1beta
    assert env["GEMINI_API_KEY"] == "adk-s-k" and "GOOGLE_API_KEY" not in env


def test_the_limit_and_the_calls_made_survive_a_gateway_restart(make_gateway: Any, tmp_path: Path) -> None:
    data = tmp_path / "restart-data"
    gt = make_gateway(data_dir=data)
    reg = gt.gateway.sessions
    name, secret = reg.create("nightly", max_requests=3)
    s = reg.get(name)
    assert s is not None
    gt.call(gt.gateway.store.record_session(name, reg.digest_of(name) or "", None, None, s.created,
                                            max_requests=s.max_requests))  # what POST /admin/sessions persists
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    for _ in range(2):
        r = httpx.post(gt.url + "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {secret}"}, timeout=20)
        assert r.status_code == 200, r.text
    gt.stop()
    again = make_gateway(data_dir=data)
    assert again.gateway.sessions.get(name).max_requests == 3  # type: ignore[union-attr]
    statuses = [httpx.post(again.url + "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {secret}"},
                           timeout=20).status_code for _ in range(2)]
    assert statuses == [200, 403]  # one call left after the restart, not a fresh allowance of three


SAMPLER = """
import json, openai
client = openai.OpenAI(max_retries=2, timeout=20)  # OPENAI_BASE_URL and OPENAI_API_KEY from agentdeck run
out = []
for _ in range(4):
    try:
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
        out.append(200)
    except openai.PermissionDeniedError as e:
        out.append([e.status_code, e.code, e.response.headers.get("x-should-retry"),
                    e.response.request.headers.get("x-stainless-retry-count")])
print(json.dumps(out))
"""


def test_max_requests_through_the_real_command(served: tuple[str, Path], tmp_path: Path) -> None:
    url, cfg = served
    script = tmp_path / "sampler.py"
    script.write_text(SAMPLER)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AGENTDECK_", "ANTHROPIC_", "OPENAI_"))}
    r = subprocess.run([sys.executable, "-m", "agentdeck", "run", "--config", str(cfg), "--url", url, "--key", "sample",
                        "--max-requests", "2", "--", sys.executable, str(script)],
                       env=env, capture_output=True, text=True, timeout=90, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    assert "at most 2 requests" in r.stderr
    refused = [403, "session_request_limit", "false", "0"]  # retry count 0: the SDK did not retry the refusal
    assert json.loads(r.stdout) == [200, 200, refused, refused]
    rows = httpx.get(url + "/admin/requests?limit=20", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
                     timeout=10).json()["requests"]
    assert sorted(row["status"] for row in rows if row.get("session") == "sample") == [200, 200, 403, 403]
