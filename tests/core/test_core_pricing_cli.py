"""`agentdeck prices` through a real subprocess: text, --json, --config, unknown models, bad flags."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from agentdeck.pricing.catalog import catalog


def prices(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "agentdeck", "prices", *args], capture_output=True, text=True,
                          timeout=60)


def test_text_shows_rates_tier_source_and_cap() -> None:
    r = prices("claude-sonnet-4-5-20250929", "gpt-4.1-mini-2025-04-14")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert f"catalog genai-prices {catalog().version}: anthropic claude-sonnet-4-5" in out
    assert "input $3.00  output $15.00  cache read $0.30  cache write $3.75 (5m) $6.00 (1h)" in out
    assert "above 200,000 input tokens: input $6.00  output $22.50" in out
    assert "model limit 64,000, cap 32,000" in out
    assert "openai gpt-4.1-mini" in out and "input $0.40  output $1.60" in out and "cap 16,384" in out


def test_json_with_a_config_override_and_caps(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[caps]\nmax_tokens = 2000\n\n[prices."house-7"]\ninput = 1.5\noutput = 6.0\n'
                   'max_output_tokens = 16000\n')
    r = prices("house-7", "gpt-6.1-sol", "--json", "--config", str(cfg))
    assert r.returncode == 0, r.stderr
    house, sol = json.loads(r.stdout)
    assert house["source"] == "config" and house["known"] is True
    assert house["per_mtok"]["input"] == 1.5 and house["per_mtok"]["output"] == 6.0
    assert house["output"] == {"model_limit": 16_000, "cap": 2_000, "default_when_unset": 2_000,
                               "rule": "[caps] max_tokens = 2,000, within the model's 16,000"}
    assert sol["source"] == f"catalog genai-prices {catalog().version}" and sol["provider"] == "openai"
    assert sol["tiers"][0]["above_input_tokens"] == 272_000 and "service_tier=flex" in sol["variants"]
    assert sol["output"]["model_limit"] is None and sol["output"]["cap"] == 2_000


def test_an_unknown_model_is_charged_the_default_and_exits_zero() -> None:
    r = prices("house-model-9")
    assert r.returncode == 0, r.stderr
    assert "house-model-9: no price known" in r.stdout and "charged the default $15.00 input / $75.00 output" in r.stdout
    data = json.loads(prices("house-model-9", "--json").stdout)[0]
    assert (data["known"], data["source"], data["per_mtok"]["output"]) == (False, "default", 75.0)


def test_an_unknown_provider_is_one_clear_error() -> None:
    r = prices("gpt-5.1", "--provider", "nope")
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.strip().count("\n") == 0 and "--provider: no provider named 'nope'" in r.stderr
