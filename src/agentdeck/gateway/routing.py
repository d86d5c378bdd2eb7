"""Routing: which model and which provider a call goes to, where an escalation goes next, and
what a call runs on its provider's fallback.

The policy lives in ``agentdeck.routing`` (the classifier, the tier table and its cross-vendor
choice) and in ``agentdeck.providers`` (which provider's patterns match a model); this stage
applies them to one call.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
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
    """Where a call goes instead: one tier up after a failed check, or its provider's fallback."""

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
        provider = self._matcher.provider_for(route.model, wire.name)  # inline: the common case stays one dict read
        if provider is None and (provider := self._provider(route.model, parsed, wire)) is None:
            # a tier's cross-vendor model this endpoint cannot be translated for: the caller's own tier model
            own = self._router.own_protocol_route(route, wire.name)
            if own is not None and (provider := self._provider(own.model, parsed, wire)) is not None:
                return Routed(own, provider)
            return Routed(route, None, self._matcher.explain_missing(route.model, wire.name))
        return Routed(route, provider)

    def _provider(self, model: str, parsed: ParsedRequest, wire: WireProtocol) -> str | None:
        """A provider of the caller's protocol that serves ``model``, else (translation on) one of another."""
        provider = self._matcher.provider_for(model, wire.name)
        if provider is None and self._protocols is not None:
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
        provider = self._provider(nxt.model, call.parsed, call.wire)
        if provider is None:
            return None
        return Escalation(nxt, provider, self._caps.max_tokens(nxt.model, call.parsed))

    def fallback(self, call: Call, fallback: str) -> Escalation | None:
        """What ``call`` runs on ``fallback`` (its provider's, of another protocol): the same model if the
        fallback serves it, else the same tier's model it serves; None when it serves neither or the call
        cannot be translated for it (the call then stays on its provider, as with no fallback)."""
        if self._protocols is None:
            return None
        protocol = self._protocols[fallback]
        if protocol != call.wire.name and not can_translate(call.endpoint, protocol):
            return None
        model = self._router.fallback_model(fallback, call.route.model, call.route.tier)
        if model is None:
            return None
        route = call.route
        if model != route.model:
            route = replace(route, model=model, reason=f"{route.reason}; {call.provider} unavailable: "
                                                      f"its fallback {fallback} ran {model}")
        return Escalation(route, fallback, self._caps.max_tokens(model, call.parsed))
