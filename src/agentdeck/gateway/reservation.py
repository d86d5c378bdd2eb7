"""Reservation: a call's worst-case cost is held against every budget before it goes out.

Why before: spend must never exceed a budget, and concurrent calls each see the others'
holds. The hold is settled to the real cost (or released) on every exit path by
``settle``, which the pipeline runs in its ``finally``.
"""

from __future__ import annotations

from agentdeck.budget import BudgetExceeded
from agentdeck.budget.ledger import Ledger
from agentdeck.gateway.call import Call, Refusal
from agentdeck.pricing import PriceTable


class ReservationStage:
    def __init__(self, ledger: Ledger, prices: PriceTable) -> None:
        self._ledger = ledger
        self._prices = prices

    def reserve(self, call: Call) -> None:
        """Hold the call's worst case; a budget that cannot pay refuses it with 403 budget_exceeded."""
        try:
            self._hold(call, call.route.model, call.max_tokens)
        except BudgetExceeded as b:
            raise Refusal(403, b.message, "budget_exceeded", {"x-should-retry": "false"}) from None

    def reserve_more(self, call: Call, model: str, max_tokens: int) -> bool:
        """Hold a re-ask one tier up; False when the budget cannot pay for it (the caller keeps its answer)."""
        try:
            self._hold(call, model, max_tokens)
        except BudgetExceeded:
            return False
        return True

    def _hold(self, call: Call, model: str, max_tokens: int) -> None:
        worst = self._prices.worst_case(model, call.context_tokens, max_tokens)
        call.reservations.append(self._ledger.reserve(call.ident.key, worst, session=call.ident.session))

    def settle(self, call: Call) -> None:
        """The whole call's cost (escalations included) settles on the first hold; the others are released."""
        if call.reservations:
            self._ledger.settle(call.reservations[0], call.cost)
            for r in call.reservations[1:]:
                self._ledger.release(r)
