"""A restarted ledger rebuilds per-session windows from the requests table (issue 16 point 2).

Real Store on a SQLite file in tmp_path, a real Ledger: spend recorded under a session is
counted against that session's budget after the ledger is rebuilt, so a $0.01 session that
was refused before a restart is still refused after it.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from agentdeck.budget.ledger import BudgetExceeded, Ledger
from agentdeck.bus import Bus, RequestCompleted
from agentdeck.config import parse_config
from agentdeck.store import Store, db_path


def _call(i: int, session: str | None, cost: float) -> RequestCompleted:
    return RequestCompleted(id=f"r{i}", key="dev", session=session, protocol="openai", endpoint="/v1/chat/completions",
                            model_requested="gpt-4o", model="gpt-4o", provider="openai", tier=None, rule=None,
                            status=200, stream=False, input_tokens=10, output_tokens=5, cost_usd=cost,
                            ts=time.time())


async def test_session_spend_survives_a_restart(tmp_path: Path) -> None:
    cfg = parse_config({"gateway": {"data_dir": str(tmp_path / "data")}}, "<test>", environ={})
    bus = Bus()
    store = await Store(db_path(tmp_path / "data"), bus, flush_interval_s=60).open()
    for i in range(4):
        bus.publish(_call(i, "run-1", 0.0025))  # $0.01 spent by session run-1
    bus.publish(_call(9, None, 0.5))  # the key's own calls outside the session
    await store.flush()
    await store.close()

    bus2 = Bus()
    store2 = await Store(db_path(tmp_path / "data"), bus2, flush_interval_s=60).open()
    try:
        ledger = Ledger(cfg, bus2)
        assert await ledger.load(store2) == 5
        ledger.set_key_budget("run-1", 0.01)  # what the gateway does when it restores the session
        assert ledger.spent("session:run-1") == pytest.approx(0.01)
        with pytest.raises(BudgetExceeded) as refused:
            ledger.reserve("dev", 0.0001, session="run-1")
        assert refused.value.budget == "session:run-1"
        # The key itself has no budget: its calls outside the session still go.
        ledger.release(ledger.reserve("dev", 0.0001))
        assert ledger.snapshot()["keys"]["run-1"]["day_usd"] == pytest.approx(0.01)
    finally:
        await store2.close()
