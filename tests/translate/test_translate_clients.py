"""The real agent clients through `agentdeck run`: Gemini CLI at its defaults, Claude Code routed to other vendors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from agentdeck.sim import MockServer
from translate_support import run_client, translate_config, wait_rows


def _describe(p: Any) -> str:
    return f"rc={p.returncode}\n--- stdout ---\n{p.stdout[-2000:]}\n--- stderr ---\n{p.stderr[-3000:]}"


def test_gemini_cli_at_its_defaults_is_served_and_priced(make_gateway: Any, mock: MockServer, tmp_path: Path) -> None:
    gw = make_gateway(**translate_config(mock.url))
    p = run_client(gw, tmp_path, "gemini", "-p", "say hello")
    assert p.returncode == 0, _describe(p)
    assert "model=gemini-" in p.stdout, _describe(p)  # the mock's answer names the model it was asked for
    paths = set(mock.stats()["by_path"])
    assert any(path.endswith(":streamGenerateContent") for path in paths), paths
    rows = wait_rows(gw, 1)
    assert rows and all(r["provider"] == "google" and r["status"] == 200 and r["cost_usd"] > 0 for r in rows), rows
    assert all(r["session"] for r in rows), "every call ran under the agentdeck run session"


@pytest.mark.parametrize("model", ["gpt-4o-mini", "gemini-2.5-flash"])
def test_claude_code_routed_by_auto_to_another_vendor_uses_a_tool(make_gateway: Any, mock: MockServer,
                                                                  tmp_path: Path, model: str) -> None:
    cfg = translate_config(mock.url)
    cfg["routing"]["tiers"] = {tier: model for tier in ("fast", "balanced", "smart")}
    gw = make_gateway(**cfg)
    p = run_client(gw, tmp_path, "claude", "-p", "look it up [mock:tool]", "--model", "auto")
    assert p.returncode == 0, _describe(p)
    assert f"model={model}" in p.stdout, _describe(p)
    rows = [r for r in wait_rows(gw, 2) if r["model_requested"] == "auto"]
    assert len(rows) >= 2, f"a tool call, then the answer: {rows}\n{_describe(p)}"
    assert all(r["model"] == model and r["provider"] != "anthropic" and r["status"] == 200 and r["cost_usd"] > 0
               for r in rows), rows
    last = orjson.loads(mock.state.last_body)
    text = orjson.dumps(last).decode()
    assert "lookup" in text, "the tool call went back to the provider with its result"
    if model.startswith("gpt"):
        assert any(m.get("role") == "tool" for m in last["messages"])
    else:
        assert any("functionResponse" in part for c in last["contents"] for part in c["parts"])
