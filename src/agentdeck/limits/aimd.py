"""The AIMD controller: the arithmetic of one provider's two limits, with no I/O in it.

Why separate from the limiter: the rule (cut x``decrease`` once per congestion event,
add ``increase`` after ``increase_every_s`` calm, clamp to min/max) is what the seed's
production system needed to survive 917 req/s, and it is easiest to check when it is a
plain object fed timestamps. The limiter applies what this decides, at once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from agentdeck.config import LimitsConfig

_EPS = 1e-9


@dataclass(slots=True)
class AimdController:
    """Requests/s and in-flight slot limits moved by congestion signals (429/529).

    A burst of 429s counts as one congestion event, like TCP's one cut per round trip:
    after a cut, further 429s are ignored for ``congestion_window_s``, and (when the caller
    knows when the failed attempt was sent) so are 429s for attempts sent before the cut,
    since they report the old rate, not the new one.
    """

    cfg: LimitsConfig
    now: float
    rps: float = 0.0
    slots: int = 0
    last_change_at: float = 0.0
    last_cut_at: float = -math.inf
    last_congestion_at: float = -math.inf
    cuts: int = 0
    increases: int = 0

    def __post_init__(self) -> None:
        c = self.cfg
        self.rps = min(max(c.rps, c.min_rps), c.max_rps)
        self.slots = min(max(c.slots, c.min_slots), c.max_slots)
        self.last_change_at = self.now

    @property
    def start_rps(self) -> float:
        c = self.cfg
        return min(max(c.rps, c.min_rps), c.max_rps)

    @property
    def start_slots(self) -> int:
        c = self.cfg
        return min(max(c.slots, c.min_slots), c.max_slots)

    def increase_due_at(self) -> float:
        """When the next additive increase may happen: ``increase_every_s`` after the later of
        the last change and the last 429."""
        return max(self.last_change_at, self.last_congestion_at) + self.cfg.increase_every_s

    def congestion(self, now: float, sent_at: float | None = None) -> bool:
        """A 429/529 arrived at ``now``. Returns True when this is a new congestion event and
        the limits were cut (they may already sit at the minimum, see ``changed``)."""
        self.last_congestion_at = now
        if now - self.last_cut_at < self.cfg.congestion_window_s - _EPS:
            return False
        if sent_at is not None and sent_at < self.last_cut_at:
            return False
        c = self.cfg
        self.rps = max(c.min_rps, round(self.rps * c.decrease, 6))
        self.slots = max(c.min_slots, int(math.floor(self.slots * c.decrease + _EPS)))
        self.last_cut_at = now
        self.last_change_at = now
        self.cuts += 1
        return True

    def increase(self, now: float, ceiling_rps: float | None = None, ceiling_slots: int | None = None) -> bool:
        """Add ``increase`` to both limits if ``increase_every_s`` passed without a 429.

        The ceiling defaults to max_rps/max_slots; the idle-recovery timer passes the
        configured starting values so an unused provider returns to where the operator set
        it, not to the maximum. Returns True when a limit moved.
        """
        if now + _EPS < self.increase_due_at():
            return False
        c = self.cfg
        top_rps = c.max_rps if ceiling_rps is None else min(ceiling_rps, c.max_rps)
        top_slots = c.max_slots if ceiling_slots is None else min(ceiling_slots, c.max_slots)
        new_rps = self.rps if self.rps >= top_rps else min(top_rps, round(self.rps + c.increase, 6))
        new_slots = self.slots if self.slots >= top_slots else min(top_slots, self.slots + int(round(c.increase)))
        if new_rps == self.rps and new_slots == self.slots:
            return False
        self.rps = new_rps
        self.slots = new_slots
        self.last_change_at = now
        self.increases += 1
        return True
