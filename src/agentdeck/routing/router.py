"""From the model a client asked for to the model the gateway calls.

`auto` is classified, the tier aliases pick a tier, a model a provider's `models` patterns
match (agentdeck.providers.matching: exact names, globs, dated snapshots) passes through.
Past `routing.downgrade_at` of a budget, `auto` drops a tier (smart -> balanced -> fast)
so an agent keeps working on the cheaper models instead of hitting the hard stop. Explicit
requests (an alias or a model name) are never downgraded: the caller chose.

Which model a tier means: for `auto` (and its escalations and downgrades) the tier's cheapest
configured model of any vendor (``agentdeck.routing.choice``), unless `[routing] same_vendor`
or translation is off; for a named tier (`fast`, ...) the tier's model for the caller's
protocol, or the cross-vendor choice when the tier names none for it. Both are computed here,
once, so resolving is a dict read.

The router holds no mutable request state; `DowngradeWatch` is the one stateful helper, so
the gateway can announce a downgrade once when it starts and once when it ends.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

from agentdeck.bus.events import BudgetDowngrade
from agentdeck.config import TIERS, Config
from agentdeck.errors import AgentdeckError
from agentdeck.providers.matching import ModelMatcher, snapshot_base
from agentdeck.routing.choice import PROTOCOLS, TierChoice, candidates, cheapest, serving
from agentdeck.routing.classifier import Rules, classify

if TYPE_CHECKING:
    from agentdeck.pricing import PriceTable

ALIASES: tuple[str, ...] = ("auto", *TIERS)


class RoutingError(AgentdeckError):
    """A routing problem a user can fix (a bad rule, an unknown model, a tier with no model)."""


class UnknownModel(RoutingError):
    """The client asked for a model that is neither an alias nor configured (the gateway answers 404)."""

    def __init__(self, model: str, detail: str | None = None) -> None:
        self.model = model
        super().__init__(detail or f"unknown model {model!r}: use auto, fast, balanced, smart or a configured model")


@dataclass(frozen=True, slots=True)
class Route:
    """The routing outcome the gateway acts on and records (tier, rule) with each request."""

    tier: str | None
    model: str
    rule: str
    reason: str
    downgraded_from: str | None = None


class Router:
    """Resolves model names; built once from the config (rules compiled, lookups precomputed)."""

    def __init__(self, cfg: Config, prices: "PriceTable | None" = None) -> None:
        """``prices``: the gateway's table (the choice warms it); built here only when a choice needs prices."""
        self.cfg = cfg
        self.rules = Rules.from_config(cfg.routing, cfg.source)
        self.downgrade_at = cfg.routing.downgrade_at
        self.max_escalations = cfg.routing.max_escalations if cfg.routing.escalate else 0
        self._table: dict[tuple[str, str], str] = {}
        self._tier_of: dict[str, str] = {}
        for tier in TIERS:
            models = cfg.routing.tiers.get(tier)
            if models is None:
                continue
            for protocol in PROTOCOLS:
                model = getattr(models, protocol)
                if model:
                    self._table[(tier, protocol)] = model
                    self._tier_of.setdefault(model, tier)
        self.matcher = ModelMatcher(cfg.providers)
        self.cross_vendor = cfg.routing.translate and not cfg.routing.same_vendor
        self.choices: dict[tuple[str, str], TierChoice] = {}
        """(tier, caller protocol) -> the cross-vendor choice (empty with same_vendor or translation off)."""
        self._auto: dict[tuple[str, str], str] = dict(self._table)
        """(tier, caller protocol) -> the model `auto` takes."""
        self._alias: dict[tuple[str, str], str] = dict(self._table)
        """(tier, caller protocol) -> the model a named tier takes."""
        self._why: dict[tuple[str, str], str] = {}
        """(tier, caller protocol) -> why auto takes its model, added to the route's reason (agentdeck route)."""
        if self.cross_vendor:
            self._choose(prices)
        self._fallback_matchers = {p.fallback: serving(cfg.providers, p.fallback) for p in cfg.providers.values()
                                   if p.fallback is not None and p.fallback in cfg.providers}
        self._fallback_tier: dict[tuple[str, str], str | None] = {}

    def _choose(self, prices: "PriceTable | None") -> None:
        """Fill ``choices`` and the auto table: per tier and caller protocol, the cheapest usable model."""
        for tier in TIERS:
            models = self.cfg.routing.tiers.get(tier)
            if models is None:
                continue
            for protocol in PROTOCOLS:
                if len(candidates(models, protocol)) < 2 and (tier, protocol) in self._table:
                    continue  # one model for everyone, and the caller's own: nothing to compare
                if prices is None:
                    from agentdeck.pricing import PriceTable

                    prices = PriceTable(self.cfg)
                choice = cheapest(models, protocol, self.matcher, self.cfg.providers, prices)
                if choice is None:
                    continue  # no provider with a key serves any of them: the caller's own model, as before
                self.choices[(tier, protocol)] = choice
                self._auto[(tier, protocol)] = choice.model
                if choice.others:
                    over = ", ".join(f"{m} (${b:.2f})" for m, b in choice.others)
                    self._why[(tier, protocol)] = (f"; {choice.model} is the {tier} tier's cheapest configured model "
                                                   f"(${choice.blended:.2f}/Mtok at 3:1 input:output) over {over}")
                self._alias.setdefault((tier, protocol), choice.model)

    # -- tiers -----------------------------------------------------------------------------
    @staticmethod
    def up(tier: str | None) -> str | None:
        """The next tier up, or None at the top (or for a route that has no tier)."""
        if tier not in TIERS:
            return None
        i = TIERS.index(tier)
        return TIERS[i + 1] if i + 1 < len(TIERS) else None

    @staticmethod
    def down(tier: str) -> str:
        """The next tier down (fast stays fast)."""
        i = TIERS.index(tier)
        return TIERS[max(i - 1, 0)]

    def model_for(self, tier: str, protocol: str, table: dict[tuple[str, str], str] | None = None) -> str:
        """The tier's model for this caller protocol (the tier table's own, unless ``table`` says);
        UnknownModel if there is none."""
        model = (self._table if table is None else table).get((tier, protocol))
        if model is None:
            raise UnknownModel(tier, f"no {protocol} model configured for tier {tier!r} (set routing.tiers.{tier}.{protocol})")
        return model

    def own_protocol_route(self, route: Route, protocol: str) -> Route | None:
        """``route`` on the caller's own protocol's tier model, for a call that cannot be translated; None
        when it already is (or has no tier, or the tier names no model for the protocol)."""
        if route.tier is None or route.rule == "explicit":
            return None
        model = self._table.get((route.tier, protocol))
        if model is None or model == route.model:
            return None
        return Route(route.tier, model, route.rule, route.reason, route.downgraded_from)

    def fallback_model(self, fallback: str, model: str, tier: str | None) -> str | None:
        """What a call for ``model`` runs on its provider's ``fallback``: the same model when the fallback
        serves it, else the same tier's model the fallback serves (its own protocol's first), else None."""
        m = self._fallback_matchers.get(fallback)
        if m is None:
            return None
        if m.serves(model):
            return model
        tier = tier or self.tier_of(model)
        if tier is None:
            return None
        key = (fallback, tier)
        if key not in self._fallback_tier:
            models = self.cfg.routing.tiers.get(tier)
            protocol = self.cfg.providers[fallback].protocol
            found = next((c for c in candidates(models, protocol) if m.serves(c)), None) if models is not None else None
            self._fallback_tier[key] = found
        return self._fallback_tier[key]

    def tier_of(self, model: str) -> str | None:
        """The tier whose model this is (dated names like claude-sonnet-4-5-20250929 included)."""
        tier = self._tier_of.get(model)
        if tier is None:
            base = snapshot_base(model)
            if base is not None:
                tier = self._tier_of.get(base)
        return tier

    def is_known(self, model: str) -> bool:
        """An alias, a tier model, or a model some provider (of any protocol) matches."""
        return model in ALIASES or self.tier_of(model) is not None or self.matcher.serves(model)

    def model_rows(self) -> list[tuple[str, str]]:
        """(model, owner) for GET /v1/models: the aliases, every exact `models` entry, then tier models.

        Glob entries are not listed (a pattern is not a model id); the owner of a tier model is the
        provider that would serve it, or "agentdeck" when none matches it.
        """
        rows = [(a, "agentdeck") for a in ALIASES]
        listed = self.matcher.listed_models()
        rows.extend(listed)
        seen = {m for m, _ in listed}
        for model in self._tier_of:
            if model not in seen:
                rows.append((model, self.matcher.any_provider_for(model) or "agentdeck"))
        return rows

    def models(self) -> list[str]:
        """The aliases first, then listed and tier models (sorted), for GET /v1/models."""
        return [*ALIASES, *sorted({m for m, _ in self.model_rows()[len(ALIASES):]})]

    # -- resolution --------------------------------------------------------------------------
    def resolve(self, model_requested: str, protocol: str, text: str, context_tokens: int, budget_share: float) -> Route:
        """Where this request goes. Raises UnknownModel for a name nobody configured."""
        if model_requested == "auto":
            d = classify(text, context_tokens, self.rules)
            tier, rule, reason, downgraded = d.tier, d.rule, d.reason, None
            if budget_share >= self.downgrade_at and tier != "fast":
                downgraded, tier = tier, self.down(tier)
                rule = f"{rule}+downgrade"
                reason = (f"{reason}; budget {budget_share:.0%} used (downgrade at {self.downgrade_at:.0%}): "
                          f"{downgraded} -> {tier}")
            why = self._why.get((tier, protocol))
            return Route(tier, self.model_for(tier, protocol, self._auto), rule, reason + why if why else reason,
                         downgraded)
        if model_requested in TIERS:
            return Route(model_requested, self.model_for(model_requested, protocol, self._alias), "alias",
                         f"the client asked for the {model_requested} tier")
        if self.is_known(model_requested):
            return Route(self.tier_of(model_requested), model_requested, "explicit", "the client named this model")
        raise UnknownModel(model_requested, self.matcher.explain_missing(model_requested, protocol))

    # -- escalation --------------------------------------------------------------------------
    def escalation(self, route: Route, escalations: Sequence[str], protocol: str, problem: str) -> Route | None:
        """The route to re-ask on after a failed quality check, or None (cap reached, top tier, explicit model).

        `escalations` are the reasons recorded so far for this request; `problem` is the new one
        (from `quality_problem` or `error_problem`). Only routed requests (auto, tier aliases)
        escalate: a client that named a model gets that model's answer.
        """
        if route.rule == "explicit" or len(escalations) >= self.max_escalations:
            return None
        nxt = self.up(route.tier)
        table = self._alias if route.rule.startswith("alias") else self._auto
        if nxt is None or (nxt, protocol) not in table:
            return None
        base = route.rule.split("+escalate", 1)[0]
        return Route(nxt, table[(nxt, protocol)], f"{base}+escalate",
                     f"{route.tier} answer failed a quality check ({problem}): re-asked on {nxt}", route.downgraded_from)


class DowngradeWatch:
    """Tells the gateway when budget-aware downgrade starts or stops, so it is announced once each way."""

    def __init__(self, downgrade_at: float) -> None:
        self.downgrade_at = downgrade_at
        self.active = False

    def update(self, share: float, budget: str) -> BudgetDowngrade | None:
        """Feed the current budget share (0..1, the fuller of hour/day); an event when the state flips."""
        active = share >= self.downgrade_at
        if active == self.active:
            return None
        self.active = active
        return BudgetDowngrade(active=active, share=share, budget=budget)
