"""Cost protection: per-request caps, the reserve/settle ledger, anomaly detection, alerts, the kill switch.

The layers, in the order a call meets them: the kill switch (:class:`KillSwitch`), the
per-request caps (:func:`clamp_max_tokens`, :func:`check_input_size`), the budgets
(:class:`Ledger`), and after the call the anomaly detector (:class:`AnomalyDetector`).
Alerts from all of them reach people through :class:`AlertSink`. Nothing here imports
Textual; the request-path methods are synchronous and O(1).
"""

from agentdeck.budget.alerts import AlertSink, secrets_of
from agentdeck.budget.anomaly import AnomalyDetector
from agentdeck.budget.caps import (
    MODEL_OUTPUT_LIMITS,
    InputTooLarge,
    check_input_size,
    clamp_max_tokens,
    max_tokens_cap,
    model_output_limit,
    worst_case_cost,
)
from agentdeck.budget.killswitch import KillSwitch, StopInfo
from agentdeck.budget.ledger import BudgetExceeded, Ledger, Reservation
from agentdeck.budget.sessions import Session, SessionRegistry

__all__ = [
    "MODEL_OUTPUT_LIMITS",
    "AlertSink",
    "AnomalyDetector",
    "BudgetExceeded",
    "InputTooLarge",
    "KillSwitch",
    "Ledger",
    "Reservation",
    "Session",
    "SessionRegistry",
    "StopInfo",
    "check_input_size",
    "clamp_max_tokens",
    "max_tokens_cap",
    "model_output_limit",
    "secrets_of",
    "worst_case_cost",
]
