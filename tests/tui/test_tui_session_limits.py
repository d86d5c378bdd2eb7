"""The budget pane's session rows show what `agentdeck run --max-requests / --timeout` gave a session."""

from __future__ import annotations

from agentdeck.tui.model import BudgetModel
from agentdeck.tui.panes.budget import session_limit_text
from tui_scripted import status_doc


def test_a_session_row_shows_its_calls_against_max_requests_and_a_timeout() -> None:
    m = BudgetModel()
    st = status_doc(keys={"run-a": {"day_usd": 0.1, "budget_usd": 1.0}, "run-b": {"day_usd": 0.2, "budget_usd": None},
                          "dev": {"day_usd": 3.0, "budget_usd": None}},
                    sessions={"run-a": {"budget_usd": 1.0, "max_requests": 50, "requests": 12},
                              "run-b": {"budget_usd": None, "max_requests": None, "requests": 0}})
    st.stopped_keys["run-b"] = "timeout: agentdeck run --timeout 15m reached"
    m.seed_status(st)
    assert session_limit_text(m, "run-a") == "12/50"
    assert session_limit_text(m, "run-b") == "timeout"
    assert session_limit_text(m, "dev") == "-"
