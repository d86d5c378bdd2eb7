"""A call's way onto its provider's fallback when the fallback speaks another protocol.

The upstream stage takes a provider's fallback inside the call's slot, while the primary's
breaker is open. For a fallback of the primary's own protocol it sends the same body; for
one of another protocol the body must be made again: the model the fallback runs (the same
one if it serves it, else the same tier's), its token cap, a reservation for its worst case,
and the request translated from the caller's protocol (or, when the fallback speaks the
caller's own protocol, the caller's body patched as for a direct call). ``CrossFallback``
does that once, only if the fallback is taken, and afterwards tells the pipeline which
translation the answer needs, so the caller always gets its own protocol back.

Why an object built per call only for such providers: every other call pays nothing for it.
"""

from __future__ import annotations

from agentdeck.gateway.call import Call
from agentdeck.gateway.reservation import ReservationStage
from agentdeck.gateway.routing import Escalation, RoutingStage
from agentdeck.wire import gemini
from agentdeck.wire.translate import Translator, translator

Request = tuple[str, bytes, dict[str, str], str]
"""(path, body, headers, query) for a provider, as ``UpstreamStage.call`` takes them."""


class CrossFallback:
    """Builds ``call``'s request for a fallback of another protocol, when the upstream stage takes it."""

    __slots__ = ("call", "routing", "reservation", "to", "tr")

    def __init__(self, call: Call, routing: RoutingStage, reservation: ReservationStage) -> None:
        self.call = call
        self.routing = routing
        self.reservation = reservation
        self.to: Escalation | None = None
        self.tr: Translator | None = None

    async def __call__(self, fallback: str, protocol: str) -> Request | None:
        """The request for ``fallback``; None when the call cannot go there (no model it serves, no
        translation for this endpoint, or a budget that cannot hold its worst case): it stays on its provider."""
        call = self.call
        to = self.routing.fallback(call, fallback)
        if to is None:
            return None
        tr = None if protocol == call.wire.name else translator(call.endpoint, protocol)
        if tr is None and protocol != call.wire.name:
            return None
        if not await self.reservation.reserve_more(call, to.route.model, fallback, to.max_tokens):
            return None
        self.to, self.tr = to, tr
        model, stream = to.route.model, call.parsed.stream
        if tr is None:
            path = gemini.upstream_path(model, stream) if call.wire.name == "gemini" else str(call.endpoint)
            return path, call.wire.patch(call.parsed, model, to.max_tokens), call.forward, call.query
        return tr.path(model, stream), tr.request(call.parsed, model, to.max_tokens), {**call.forward, **tr.headers()}, ""

    def taken(self, call: Call) -> Translator | None:
        """The fallback answered: the call now runs its model (pricing, x-agentdeck-model); the translation
        its answer needs back to the caller's protocol (None when it speaks the caller's own)."""
        if self.to is not None:
            call.route, call.max_tokens = self.to.route, self.to.max_tokens
        return self.tr
