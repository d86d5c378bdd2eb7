"""Hostile input on the request path (issue 16 points 5, 7 and 10's anthropic-beta): the lead's stages.

- a model name with NUL, CR, LF, non-Latin-1 characters or 10,000 characters: the answer is
  complete JSON, ``x-agentdeck-model`` is a safe header value, and the call is recorded
  with the name as sent;
- JSON nested past the documented depth (``MAX_JSON_DEPTH``) is a 400 that names the limit,
  at every depth from just past it to far beyond, recorded; at the limit it is served;
- ``anthropic-beta`` bytes outside ASCII reach the provider byte for byte.

A real gateway (uvicorn on its own thread) and the mock provider; the body the mock saw is
read from its own record of the last request's raw headers.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any, Callable

import httpx
import pytest

from agentdeck.gateway.admission import MAX_JSON_DEPTH
from agentdeck.sim import MockServer
from deck_support import ADMIN_TOKEN, GATEWAY_KEY, PROVIDER_KEY_OPENAI

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
OAI = {"Authorization": f"Bearer {GATEWAY_KEY}"}
ANT = {"x-api-key": GATEWAY_KEY, "anthropic-version": "2023-06-01"}
SAFE = set(range(0x20, 0x7F)) | set(range(0xA0, 0x100))


def _recorded(gw: Any, rid: str) -> dict[str, Any]:
    """The row of request ``rid`` (the gateway flushes its queue on GET /admin/requests)."""
    end = time.monotonic() + 10
    while time.monotonic() < end:
        httpx.get(gw.url + "/admin/requests?limit=1", headers=ADMIN, timeout=10)
        conn = sqlite3.connect(Path(gw.cfg.gateway.data_dir) / "agentdeck.db")
        conn.row_factory = sqlite3.Row
        try:
            row = conn.execute("SELECT * FROM requests WHERE id = ?", (rid,)).fetchone()
        finally:
            conn.close()
        if row is not None:
            return dict(row)
        time.sleep(0.05)
    raise AssertionError(f"call {rid} was never recorded")


def _safe_header(value: bytes) -> bool:
    return all(b in SAFE for b in value)


@pytest.fixture
def gw(make_gateway: Callable[..., Any], mock: MockServer) -> Any:
    # A glob so that hostile names also reach the provider (the success path echoes them too).
    openai_any = {"protocol": "openai", "base_url": mock.url, "api_key": PROVIDER_KEY_OPENAI, "models": ["gpt-*"]}
    return make_gateway(providers={"openai": openai_any})


HOSTILE_MODELS = ["gpt-4o\x00", "gpt-4o\r\nx-injected: 1", "gpt-4o\n", "gpt-\u2603-snowman", "gpt-\U0001f600",
                  "gpt-" + "x" * 10_000, "\r\n\r\n", "\u00e9\u00e8", "gpt-\x7f\x1b[31m"]


@pytest.mark.parametrize("model", HOSTILE_MODELS, ids=lambda m: repr(m[:20]))
def test_hostile_model_names_get_a_whole_answer_a_safe_header_and_a_record(gw: Any, model: str) -> None:
    for path, headers, body in (
        ("/v1/chat/completions", OAI, {"model": model, "messages": [{"role": "user", "content": "hi"}],
                                       "max_tokens": 8}),
        ("/v1/messages", ANT, {"model": model, "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}),
    ):
        r = httpx.post(gw.url + path, content=json.dumps(body).encode(), headers={**headers,
                       "content-type": "application/json"}, timeout=20)
        assert r.status_code != 500, r.text[:300]
        r.json()  # complete JSON, whatever the status
        assert "injected" not in {k.lower() for k in r.headers}
        raw = dict(r.headers.raw)
        echoed = raw[b"x-agentdeck-model"]
        assert _safe_header(echoed) and len(echoed) <= 1000, echoed[:80]
        row = _recorded(gw, r.headers["x-agentdeck-request-id"])
        assert row["model_requested"] == model


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 255, 300, 512, 1023, 1024, 1025, 5000])
def test_json_deeper_than_the_documented_depth_is_a_400(gw: Any, depth: int) -> None:
    nested = "[" * depth + "]" * depth  # the body itself is one level
    raw = ('{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "metadata": '
           + nested + "}").encode()
    r = httpx.post(gw.url + "/v1/chat/completions", content=raw, headers={**OAI, "content-type": "application/json"},
                   timeout=20)
    assert r.status_code == 400, (depth, r.status_code, r.text[:200])
    err = r.json()["error"]
    assert str(MAX_JSON_DEPTH) in err["message"] or err["code"] == "invalid_json", err
    _recorded(gw, r.headers["x-agentdeck-request-id"])
    a = httpx.post(gw.url + "/v1/messages", content=raw.replace(b'"gpt-4o-mini"', b'"claude-haiku-4-5"'),
                   headers={**ANT, "content-type": "application/json"}, timeout=20)
    assert a.status_code == 400 and a.json()["type"] == "error", a.text[:200]


def test_json_at_the_documented_depth_is_served(gw: Any) -> None:
    depth = MAX_JSON_DEPTH - 1  # plus the body object itself: exactly MAX_JSON_DEPTH levels
    raw = ('{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8, '
           '"metadata": ' + "[" * depth + "]" * depth + "}").encode()
    r = httpx.post(gw.url + "/v1/chat/completions", content=raw, headers={**OAI, "content-type": "application/json"},
                   timeout=20)
    assert r.status_code == 200, r.text[:300]


@pytest.mark.parametrize("beta", ["prompt-caching-2024-07-31,\u00fcn\u00ef".encode("utf-8"),
                                  b"x-\xff\xfe-raw", "caf\u00e9".encode("latin-1")])
def test_anthropic_beta_bytes_reach_the_provider_unchanged(make_gateway: Callable[..., Any], mock: MockServer,
                                                           beta: bytes) -> None:
    """UTF-8 reaches the provider byte for byte; other bytes could only be garbled by the HTTP client
    on the way, so the caller gets one 400 naming the header instead and nothing is sent."""
    gw = make_gateway()
    r = httpx.post(gw.url + "/v1/messages", json={"model": "claude-haiku-4-5", "max_tokens": 8,
                                                  "messages": [{"role": "user", "content": "hi"}]},
                   headers={**ANT, "anthropic-beta": beta}, timeout=20)
    try:
        beta.decode("utf-8")
    except UnicodeDecodeError:
        assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"
        assert "anthropic-beta" in r.json()["error"]["message"]
        return
    assert r.status_code == 200, r.text[:300]
    seen = dict(mock.state.last_raw_headers)
    assert seen.get(b"anthropic-beta") == beta
