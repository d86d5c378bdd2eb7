"""Routing: which model and which provider a call goes to, and where an escalation goes next.

The policy lives in ``agentdeck.routing`` (the classifier, the tier table) and in
``agentdeck.providers`` (which provider's patterns match a model); this stage applies
them to one call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

from agentdeck.gateway.admission import TokenCaps
from agentdeck.gateway.call import Call
from agentdeck.providers import ModelMatcher
from agentdeck.routing import ALIASES, Route, Router, UnknownModel, extract_text
from agentdeck.wire import ParsedRequest, WireProtocol
from agentdeck.wire.translate import can_translate


@dataclass(slots=True)
class Routed:
    """Where a call would go: ``route`` None for a name nobody serves, ``provider`` None when no
    provider of the caller's protocol serves the routed model; ``missing`` says why, for the 404."""

    route: Route | None
    provider: str | None
    missing: str = ""


@dataclass(slots=True)
class Escalation:
    route: Route
    provider: str
    max_tokens: int


class RoutingStage:
    def __init__(self, router: Router, matcher: ModelMatcher, budget_share: Callable[[], float], caps: TokenCaps,
                 escalate: bool, protocols: Mapping[str, str] | None = None) -> None:
        """``protocols`` (provider name -> protocol) turns translation on: a model no provider of the
        caller's protocol serves goes to one of another protocol the call can be translated for."""
        self._protocols = protocols
        self._router = router
        self._matcher = matcher
        self._share = budget_share
        self._caps = caps
        self._escalate = escalate

    def resolve(self, parsed: ParsedRequest, wire: WireProtocol, context_tokens: int) -> Routed:
        text = extract_text(wire.name, parsed.endpoint, parsed.body)[0] if parsed.model == "auto" else ""
        try:
            route = self._router.resolve(parsed.model, wire.name, text, context_tokens, self._share())
        except UnknownModel as e:
            # an alias whose tier has no model for this protocol: the router's message names the key to set
            missing = str(e) if parsed.model in ALIASES else self._matcher.explain_missing(parsed.model, wire.name)
            return Routed(None, None, missing)
        provider = self._matcher.provider_for(route.model, wire.name)
        if provider is None:
            provider = self._translated_provider(route.model, parsed)
            if provider is None:
                return Routed(route, None, self._matcher.explain_missing(route.model, wire.name))
        return Routed(route, provider)

    def _translated_provider(self, model: str, parsed: ParsedRequest) -> str | None:
        if self._protocols is None:
            return None
        provider = self._matcher.any_provider_for(model)
        if provider is None or not can_translate(parsed.endpoint, self._protocols[provider]):
            return None
        return provider

    def escalation(self, call: Call, problem: str | None) -> Escalation | None:
        """One tier up for an `auto` call whose answer failed a check; None when it stays
        (a named model or tier, escalation off, the cap reached, the top tier, no provider)."""
        if problem is None or not self._escalate or call.parsed.model != "auto" or call.route.tier is None:
            return None
        nxt = self._router.escalation(call.route, call.escalations, call.wire.name, problem)
        if nxt is None:
            return None
        provider = self._matcher.provider_for(nxt.model, call.wire.name)
        if provider is None:
            return None
        return Escalation(nxt, provider, self._caps.max_tokens(nxt.model, call.parsed))
