"""The demo has a Google provider, and its tiers show routing across the three vendors."""

from __future__ import annotations

from pathlib import Path

from agentdeck.demo import demo_config
from agentdeck.routing import Router


def test_the_demo_routes_auto_across_vendors(tmp_path: Path) -> None:
    cfg, _ = demo_config("http://127.0.0.1:1", "http://127.0.0.1:2", tmp_path, google_url="http://127.0.0.1:3")
    assert cfg.providers["google"].protocol == "gemini" and cfg.providers["google"].base_url == "http://127.0.0.1:3"
    assert cfg.routing.translate and not cfg.routing.same_vendor
    router = Router(cfg)
    for protocol in ("anthropic", "openai", "gemini"):
        fast, balanced = router.choices[("fast", protocol)], router.choices[("balanced", protocol)]
        assert (fast.model, fast.provider) == ("gpt-4o-mini", "openai")
        assert (balanced.model, balanced.provider) == ("gemini-2.5-pro", "google")
        assert router.resolve("smart", protocol, "", 10, 0.0).model == "claude-opus-4-5", "one model for everyone"
    # the OpenAI provider (the fast tier's, rate-limited in the demo) falls back to Google
    assert cfg.providers["openai"].fallback == "google"
    assert router.fallback_model("google", "gpt-4o-mini", "fast") == "gemini-2.5-flash"
