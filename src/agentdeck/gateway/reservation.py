"""Reservation: a call's worst-case cost is held against every budget before it goes out.

Why before: spend must never exceed a budget, and concurrent calls each see the others'
holds. The hold is settled to the real cost (or released) on every exit path by
``settle``, which the pipeline runs in its ``finally``.
"""

from __future__ import annotations

from agentdeck.budget import BudgetExceeded
from agentdeck.gateway.call import Call, Refusal
from agentdeck.pricing import PriceTable
from agentdeck.state import SpendState


class ReservationStage:
    def __init__(self, spend: SpendState, prices: PriceTable) -> None:
        self._spend = spend
        self._prices = prices

    async def reserve(self, call: Call) -> None:
        """Hold the call's worst case; a budget that cannot pay refuses it with 403 budget_exceeded."""
        try:
            await self._hold(call, call.route.model, call.provider, call.max_tokens)
        except BudgetExceeded as b:
            raise Refusal(403, b.message, "budget_exceeded", {"x-should-retry": "false"}) from None

    async def reserve_more(self, call: Call, model: str, provider: str, max_tokens: int) -> bool:
        """Hold a re-ask one tier up; False when the budget cannot pay for it (the caller keeps its answer)."""
        try:
            await self._hold(call, model, provider, max_tokens)
        except BudgetExceeded:
            return False
        return True

    async def _hold(self, call: Call, model: str, provider: str, max_tokens: int) -> None:
        worst = self._prices.worst_case(model, call.context_tokens, max_tokens, provider)
        call.reservations.append(await self._spend.reserve(call.ident.key, worst, session=call.ident.session,
                                                           provider=provider))

    async def settle(self, call: Call) -> None:
        """The whole call's cost (escalations included) settles on the first hold; the others are released."""
        if call.reservations:
            await self._spend.settle(call.reservations[0], call.cost)
            for r in call.reservations[1:]:
                await self._spend.release(r)
