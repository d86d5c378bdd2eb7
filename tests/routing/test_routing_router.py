"""Router: aliases, explicit models, unknown models, budget-aware downgrade, capped escalation."""

from __future__ import annotations

from pathlib import Path

import pytest
from routing_support import make_config

from agentdeck.bus.events import BudgetDowngrade
from agentdeck.errors import AgentdeckError
from agentdeck.routing import DowngradeWatch, Route, Router, UnknownModel, quality_problem

DESIGN = "Design a job queue for the video transcoding pipeline"   # smart
FEATURE = "Implement pagination for the /projects endpoint"        # balanced
GREP = "grep for TODOs in the payments module"                     # fast


@pytest.fixture
def router(tmp_path: Path) -> Router:
    return Router(make_config(tmp_path))


def test_auto_classifies_and_maps_the_tier_per_protocol(router: Router) -> None:
    r = router.resolve("auto", "anthropic", GREP, 40, 0.0)
    assert r == Route("fast", "claude-haiku-4-5", "search", r.reason, None)
    assert router.resolve("auto", "openai", GREP, 40, 0.0).model == "gpt-4o-mini"
    assert router.resolve("auto", "openai", FEATURE, 40, 0.0).model == "gpt-4o"
    assert router.resolve("auto", "anthropic", DESIGN, 40, 0.0).model == "claude-opus-4-5"
    # The prompt's size counts: a 150k-token prompt does not go to the fast tier.
    assert router.resolve("auto", "anthropic", GREP, 150_000, 0.0).tier == "balanced"


def test_tier_aliases_and_explicit_models(router: Router) -> None:
    assert router.resolve("smart", "openai", GREP, 10, 0.0) == Route("smart", "gpt-4.1", "alias", "the client asked for the smart tier")
    r = router.resolve("claude-sonnet-4-5", "anthropic", GREP, 10, 0.0)
    assert (r.tier, r.model, r.rule) == ("balanced", "claude-sonnet-4-5", "explicit")
    # A configured model outside the tier table has no tier.
    assert router.resolve("gpt-5", "openai", GREP, 10, 0.0).tier is None
    # Dated snapshot names (what Claude Code sends) resolve to their tier and pass through unchanged.
    r = router.resolve("claude-haiku-4-5-20251001", "anthropic", DESIGN, 10, 0.0)
    assert (r.tier, r.model, r.rule) == ("fast", "claude-haiku-4-5-20251001", "explicit")


def test_unknown_model_raises_a_user_error(router: Router) -> None:
    with pytest.raises(UnknownModel) as e:
        router.resolve("mistral-17-ultra", "openai", GREP, 10, 0.0)
    assert e.value.model == "mistral-17-ultra" and isinstance(e.value, AgentdeckError)
    assert "mistral-17-ultra" in str(e.value)


def test_a_tier_with_no_model_for_the_protocol_is_an_unknown_model(tmp_path: Path) -> None:
    router = Router(make_config(tmp_path, tiers={"fast": {"anthropic": "claude-haiku-4-5"}}))
    with pytest.raises(UnknownModel, match=r"routing.tiers.fast.openai"):
        router.resolve("auto", "openai", GREP, 10, 0.0)
    assert router.model_for("fast", "anthropic") == "claude-haiku-4-5"


def test_up_and_down() -> None:
    assert [Router.up(t) for t in ("fast", "balanced", "smart")] == ["balanced", "smart", None]
    assert Router.up(None) is None
    assert [Router.down(t) for t in ("fast", "balanced", "smart")] == ["fast", "fast", "balanced"]


# --- budget-aware downgrade --------------------------------------------------------------------
def test_downgrade_past_the_threshold_for_auto_only(tmp_path: Path) -> None:
    router = Router(make_config(tmp_path, downgrade_at=0.8))
    below = router.resolve("auto", "anthropic", DESIGN, 10, 0.79)
    assert (below.tier, below.rule, below.downgraded_from) == ("smart", "design", None)
    at = router.resolve("auto", "anthropic", DESIGN, 10, 0.80)
    assert (at.tier, at.model, at.rule, at.downgraded_from) == ("balanced", "claude-sonnet-4-5", "design+downgrade", "smart")
    assert "80%" in at.reason
    mid = router.resolve("auto", "openai", FEATURE, 10, 0.95)
    assert (mid.tier, mid.model, mid.rule, mid.downgraded_from) == ("fast", "gpt-4o-mini", "feature+downgrade", "balanced")
    low = router.resolve("auto", "openai", GREP, 10, 0.95)
    assert (low.tier, low.rule, low.downgraded_from) == ("fast", "search", None)
    # What the client named explicitly is never downgraded.
    assert router.resolve("smart", "anthropic", DESIGN, 10, 0.99).tier == "smart"
    assert router.resolve("claude-opus-4-5", "anthropic", DESIGN, 10, 0.99).model == "claude-opus-4-5"


def test_downgrade_is_announced_once_each_way() -> None:
    watch = DowngradeWatch(0.8)
    assert watch.update(0.5, "daily") is None
    ev = watch.update(0.81, "daily")
    assert isinstance(ev, BudgetDowngrade) and ev.active and ev.share == 0.81 and ev.budget == "daily"
    assert watch.update(0.9, "daily") is None
    ev = watch.update(0.1, "daily")
    assert ev is not None and not ev.active
    assert watch.update(0.2, "daily") is None


# --- escalation ---------------------------------------------------------------------------------
def _chat(content: str | None, finish: str = "stop") -> dict[str, object]:
    return {"choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": finish}]}


def _ask(router: Router, request: dict[str, object], answers: dict[str, dict[str, object]], text: str) -> tuple[Route, list[str]]:
    """The gateway's escalation loop in miniature: ask, check, re-ask a tier up until good or capped."""
    route = router.resolve("auto", "openai", text, 10, 0.0)
    escalations: list[str] = []
    while True:
        problem = quality_problem("openai", "/v1/chat/completions", request, answers[route.model])
        nxt = router.escalation(route, escalations, "openai", problem) if problem else None
        if nxt is None:
            return route, escalations
        escalations.append(f"{route.tier}->{nxt.tier}: {problem}")
        route = nxt


def test_a_truncated_answer_is_re_asked_one_tier_up(router: Router) -> None:
    request = {"model": "auto", "messages": [{"role": "user", "content": GREP}], "max_tokens": 20}
    answers = {"gpt-4o-mini": _chat("TODO: refund retr", "length"), "gpt-4o": _chat("3 TODOs found"), "gpt-4.1": _chat("x")}
    route, esc = _ask(router, request, answers, GREP)
    assert (route.tier, route.model, route.rule) == ("balanced", "gpt-4o", "search+escalate")
    assert esc == ["fast->balanced: truncated"]
    assert "truncated" in route.reason


def test_invalid_json_escalates_and_the_cap_holds(tmp_path: Path) -> None:
    request = {"model": "auto", "response_format": {"type": "json_object"},
               "messages": [{"role": "user", "content": "list the files in src as JSON"}]}
    broken = _chat('{"files": ["a.py", ')
    answers = {"gpt-4o-mini": broken, "gpt-4o": broken, "gpt-4.1": broken}
    capped_at_one = Router(make_config(tmp_path, max_escalations=1))
    route, esc = _ask(capped_at_one, request, answers, "list the files in src as JSON")
    assert route.tier == "balanced" and esc == ["fast->balanced: invalid-json"]
    capped_at_two = Router(make_config(tmp_path, max_escalations=2))
    route, esc = _ask(capped_at_two, request, answers, "list the files in src as JSON")
    assert route.tier == "smart" and esc == ["fast->balanced: invalid-json", "balanced->smart: invalid-json"]
    # The smart tier is the top: nothing left to escalate to, whatever the cap.
    assert capped_at_two.escalation(route, [], "openai", "invalid-json") is None
    # A good answer is kept on the fast tier.
    answers["gpt-4o-mini"] = _chat('{"files": ["a.py"]}')
    route, esc = _ask(capped_at_two, request, answers, "list the files in src as JSON")
    assert route.tier == "fast" and esc == []


def test_no_escalation_when_disabled_or_for_explicit_models(tmp_path: Path) -> None:
    off = Router(make_config(tmp_path, escalate=False))
    fast = off.resolve("auto", "openai", GREP, 10, 0.0)
    assert off.escalation(fast, [], "openai", "truncated") is None
    on = Router(make_config(tmp_path))
    explicit = on.resolve("gpt-4o-mini", "openai", GREP, 10, 0.0)
    assert on.escalation(explicit, [], "openai", "truncated") is None
    alias = on.resolve("fast", "openai", GREP, 10, 0.0)
    nxt = on.escalation(alias, [], "openai", "empty")
    assert nxt is not None and (nxt.tier, nxt.rule) == ("balanced", "alias+escalate")


def test_models_lists_aliases_first(router: Router) -> None:
    models = router.models()
    assert models[:4] == ["auto", "fast", "balanced", "smart"]
    assert "claude-opus-4-5" in models and "gpt-4o-mini" in models
