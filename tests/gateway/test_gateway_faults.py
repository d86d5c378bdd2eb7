"""Fault tests with real processes: a full disk and its recovery, slowloris, huge headers, a connection
flood, and `kill -9` with a session budget (issue 16 points 1, 2, 3). No Redis anywhere.

The disk: a tmpfs mounted on the data dir when the machine allows it (root in the dev
container), else a write limit (``ulimit -f`` via prlimit) on the gateway process; the test
names which in its output (``-rs`` / the assertion text). See gateway_faults_support.
"""

from __future__ import annotations

import signal
import socket
import subprocess
from pathlib import Path
from typing import Any, Iterator

import httpx
import openai
import pytest

from agentdeck.config import parse_config
from agentdeck.gateway.frontdoor import FrontDoor
from agentdeck.gateway.server import GatewayThread
from agentdeck.sim import MockServer
from deck_support import GATEWAY_KEY, gateway_config_dict, serve_process, write_serve_config
from gateway_faults_support import (Disk, admin_get, admin_post, chat, host_port, open_slowloris, read_answer,
                                    small_disk, until)


def _stop(proc: "subprocess.Popen[str]", sig: int = signal.SIGTERM) -> tuple[int, str]:
    proc.send_signal(sig)
    try:
        _out, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        _out, err = proc.communicate()
    return proc.returncode, err


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Disk]:
    d = small_disk(tmp_path / "fs")
    print(f"disk-full fault via: {d.kind}")
    try:
        yield d
    finally:
        d.close()


def _requests(url: str) -> list[dict[str, Any]]:
    return admin_get(url, "/admin/requests?limit=1000")["requests"]


# -- the disk ------------------------------------------------------------------------------------

def test_full_disk_loses_no_finished_call_and_the_stop_says_in_memory(tmp_path: Path, mock: MockServer,
                                                                      disk: Disk) -> None:
    data = disk.root / "data"
    cfg = write_serve_config(tmp_path / "c.toml", data, mock.url + "/v1")
    proc, url = serve_process(cfg)
    disk.attach(proc.pid)
    try:
        for i in range(5):
            assert chat(url, GATEWAY_KEY, f"before {i}").status_code == 200
        until(lambda: len(_requests(url)) == 5, "the first calls recorded")
        disk.fill()
        for i in range(100):
            assert chat(url, GATEWAY_KEY, f"during {i} " + "x" * 2000).status_code == 200
        stop = admin_post(url, "/admin/stop", {"reason": "disk drill"})
        assert stop.status_code == 200, stop.text
        body = stop.json()
        assert body["stopped"] is True and body["durable"] is False, (disk.kind, body)
        assert "in memory only" in body["warning"]
        # The stop holds although it could not be written.
        assert chat(url, GATEWAY_KEY).status_code == 403
        assert admin_get(url, "/admin/status")["stopped"] is True
        disk.free()
        answered = lambda: sum(r["status"] == 200 for r in _requests(url))  # noqa: E731
        until(lambda: answered() == 105, f"all 105 calls written after the disk ({disk.kind}) was freed")
        history = admin_get(url, "/admin/history")
        kinds = [a["kind"] for a in history["alerts"]]
        assert "store-write-failed" in kinds and "store-write-recovered" in kinds
        assert history["stops"][0]["reason"] == "disk drill"
        spend = admin_get(url, "/admin/status")["spend"]["day_usd"]
    finally:
        code, err = _stop(proc)
    assert code == 0 and "Application shutdown failed" not in err and "Traceback" not in err, err
    assert "P0" in err and "cannot be written" in err  # the alert reached stderr

    proc2, url2 = serve_process(cfg)
    try:
        status = admin_get(url2, "/admin/status")
        assert status["stopped"] is True and status["stop_reason"] == "disk drill"  # durable after all
        assert status["spend"]["day_usd"] == pytest.approx(spend)  # the ledger did not forget
    finally:
        _stop(proc2)


def test_sigterm_on_a_full_disk_shuts_down_and_says_what_it_could_not_write(tmp_path: Path, mock: MockServer,
                                                                           disk: Disk) -> None:
    data = disk.root / "data"
    cfg = write_serve_config(tmp_path / "c.toml", data, mock.url + "/v1")
    proc, url = serve_process(cfg)
    disk.attach(proc.pid)
    try:
        assert chat(url, GATEWAY_KEY).status_code == 200
        until(lambda: len(_requests(url)) == 1, "the first call recorded")
        disk.fill()
        for i in range(20):
            assert chat(url, GATEWAY_KEY, "y" * 4000).status_code == 200
    finally:
        code, err = _stop(proc)
        disk.free()
    assert code == 0 and "Application shutdown failed" not in err and "Traceback" not in err, err
    assert "rows could not be written" in err and "at shutdown" in err, err


# -- kill -9 with a session budget ---------------------------------------------------------------

def test_kill_9_and_restart_keep_a_session_budget(tmp_path: Path, mock: MockServer) -> None:
    cfg = write_serve_config(tmp_path / "c.toml", tmp_path / "data", mock.url + "/v1")
    proc, url = serve_process(cfg)
    try:
        made = admin_post(url, "/admin/sessions", {"name": "tiny", "budget_usd": 0.0002, "key": "dev"})
        assert made.status_code == 200, made.text
        secret = made.json()["key"]
        answered = 0
        for i in range(200):
            r = chat(url, secret, "spend " * 50)
            if r.status_code == 403:
                break
            assert r.status_code == 200, r.text
            answered += 1
        assert r.status_code == 403 and r.json()["error"]["code"] == "budget_exceeded", r.text
        assert answered > 0
        spent = admin_get(url, "/admin/status")["keys"]["tiny"]["day_usd"]
        until(lambda: len(_requests(url)) >= answered + 1, "the session's calls on disk")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)

    proc2, url2 = serve_process(cfg)
    try:
        again = chat(url2, secret, "spend " * 50)
        assert again.status_code == 403 and again.json()["error"]["code"] == "budget_exceeded", again.text
        assert "session 'tiny' budget" in again.json()["error"]["message"]
        assert admin_get(url2, "/admin/status")["keys"]["tiny"]["day_usd"] == pytest.approx(spent)
    finally:
        _stop(proc2)


# -- the front door ------------------------------------------------------------------------------

def test_a_normal_caller_is_answered_during_a_200_connection_slowloris(tmp_path: Path, mock: MockServer) -> None:
    cfg = write_serve_config(tmp_path / "c.toml", tmp_path / "data", mock.url + "/v1")
    proc, url = serve_process(cfg)
    socks: list[socket.socket] = []
    try:
        socks = open_slowloris(url, 200)
        client = openai.OpenAI(base_url=url + "/v1", api_key=GATEWAY_KEY, max_retries=0, timeout=20)
        for _ in range(3):
            r = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}],
                                               max_tokens=8)
            assert r.choices[0].message.content
        assert admin_get(url, "/admin/status")["stopped"] is False
    finally:
        for s in socks:
            s.close()
        code, err = _stop(proc)
    assert code == 0 and "Traceback" not in err, err


@pytest.fixture
def door_gateway(tmp_path: Path, mock: MockServer) -> Iterator[GatewayThread]:
    cfg = parse_config(gateway_config_dict(tmp_path / "data", mock.url), "<test>")
    gt = GatewayThread(cfg, front_door=FrontDoor(header_timeout_s=0.5, max_header_bytes=16 * 1024,
                                                 max_connections=40)).start()
    try:
        yield gt
    finally:
        gt.stop()


def _status_and_json(raw: bytes) -> tuple[int, dict[str, Any]]:
    import json

    head, _, body = raw.partition(b"\r\n\r\n")
    assert b"connection: close" in head.lower(), head
    return int(head.split(b" ", 2)[1]), json.loads(body)


def test_headers_never_finished_get_408_and_the_connection_closes(door_gateway: GatewayThread) -> None:
    (s,) = open_slowloris(door_gateway.url, 1)
    status, body = _status_and_json(read_answer(s))
    s.close()
    assert status == 408 and body["error"]["code"] == "header_timeout"
    # A connection that never sends a byte is closed too.
    idle = socket.create_connection(host_port(door_gateway.url))
    status, body = _status_and_json(read_answer(idle))
    idle.close()
    assert status == 408


def test_a_kept_alive_connections_next_request_left_half_sent_gets_408(door_gateway: GatewayThread) -> None:
    # The deadline of a later request on a connection starts with its first bytes, when they do not
    # complete its headers (a request whose headers arrive whole arms no timer at all).
    s = socket.create_connection(host_port(door_gateway.url))
    s.settimeout(10)
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    first = s.recv(65536)
    assert first.startswith(b"HTTP/1.1 200"), first
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
    got = b""
    while b"\r\n\r\n" not in got or b"header_timeout" not in got:
        chunk = s.recv(65536)
        if not chunk:
            break
        got += chunk
    s.close()
    assert got.startswith(b"HTTP/1.1 408"), got
    assert b"header_timeout" in got


def test_huge_headers_get_431_before_they_are_buffered(door_gateway: GatewayThread) -> None:
    s = socket.create_connection(host_port(door_gateway.url))
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ")
    try:
        for _ in range(64):  # 4 MB offered; the gateway stops reading after 16 KB
            s.sendall(b"a" * 65536)
    except (BrokenPipeError, ConnectionResetError):
        pass
    status, body = _status_and_json(read_answer(s))
    s.close()
    assert status == 431 and body["error"]["code"] == "headers_too_large"
    # Headers under the cap (and a body of any size the gateway allows) still work.
    assert httpx.get(door_gateway.url + "/healthz", headers={"x-fine": "a" * 8000}).status_code == 200


def test_connections_over_the_cap_get_a_clear_503_and_others_still_work(door_gateway: GatewayThread) -> None:
    held = [socket.create_connection(host_port(door_gateway.url)) for _ in range(40)]
    try:
        extra = socket.create_connection(host_port(door_gateway.url))
        status, body = _status_and_json(read_answer(extra))
        extra.close()
        assert status == 503 and body["error"]["code"] == "too_many_connections"
        assert "too many open connections" in body["error"]["message"]
    finally:
        for s in held:
            s.close()
    until(lambda: httpx.get(door_gateway.url + "/healthz").status_code == 200, "served again once they closed")


# -- the breaker's alert names no fallback that is not configured (issue 16 point 10) -------------

def test_breaker_open_alert_says_where_traffic_goes() -> None:
    from agentdeck.bus import Alert, Bus
    from agentdeck.config import BreakerConfig, LimitsConfig
    from agentdeck.limits import ProviderLimiter

    def opened(**kw: Any) -> str:
        bus = Bus()
        sub = bus.subscribe("t", types={"alert"})
        lim = ProviderLimiter("openai", LimitsConfig(), bus, breaker=BreakerConfig(), **kw)
        for _ in range(50):
            lim.breaker.record_failure()
        (alert,) = [e for e in sub.drain() if isinstance(e, Alert) and e.kind == "breaker_open"]
        lim.close()
        return alert.message

    assert "no fallback is configured" in opened(fallback=None) and "fallback openai" not in opened(fallback=None)
    assert "traffic goes to its fallback azure" in opened(fallback="azure")
    untold = opened()  # a limiter built without saying (the gateway passes fallback=p.fallback)
    assert "if one is configured" in untold and "traffic goes to its fallback for" not in untold


def test_kept_alive_connections_are_not_cut_between_requests(door_gateway: GatewayThread) -> None:
    import time

    s = socket.create_connection(host_port(door_gateway.url))
    s.settimeout(10)
    req = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    s.sendall(req)
    first = s.recv(65536)
    assert first.startswith(b"HTTP/1.1 200"), first
    time.sleep(1.0)  # idle for twice the header deadline: uvicorn's keep-alive governs, not the deadline
    s.sendall(req + req)  # and two pipelined requests at once
    got = b""
    while got.count(b"HTTP/1.1 200") < 2:
        chunk = s.recv(65536)
        assert chunk, got
        got += chunk
    assert b"408" not in got
    s.close()
