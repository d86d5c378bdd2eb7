"""In-process event bus: typed events, non-blocking publish, one bounded queue per subscriber."""

from agentdeck.bus.events import (
    Alert,
    BudgetDowngrade,
    Escalated,
    Event,
    LimitChanged,
    ProviderThrottled,
    RequestCompleted,
    StatsTick,
    StopChanged,
    event_from_dict,
)
from agentdeck.bus.hub import Bus, Policy, Subscription

__all__ = [
    "Alert",
    "BudgetDowngrade",
    "Bus",
    "Escalated",
    "Event",
    "LimitChanged",
    "Policy",
    "ProviderThrottled",
    "RequestCompleted",
    "StatsTick",
    "StopChanged",
    "Subscription",
    "event_from_dict",
]
