"""History in the real SQLite database: every run stored, and the before/after rule for calling a fix held."""

from __future__ import annotations

import json
import time
from pathlib import Path

from flaky_support import NAMES, PROJECT, session

from agentdeck.flaky.history import compare, latest_report, runs_of_test, save_report, sessions
from agentdeck.flaky.stats import runs_needed
from agentdeck.store import connect


def test_every_run_is_stored_and_the_latest_report_is_kept(tmp_path: Path) -> None:
    conn = connect(tmp_path / "agentdeck.db")
    try:
        sid = save_report(conn, session({0: ["passed", "failed", "passed"], 1: ["passed"] * 3}, time.time()))
        assert conn.execute("SELECT COUNT(*) FROM flaky_runs WHERE session_id = ?", (sid,)).fetchone()[0] == 7
        runs = runs_of_test(conn, PROJECT, NAMES[0])
        assert [r["outcome"] for r in runs] == ["failed", "passed", "failed", "passed"]
        assert runs[0]["experiment"] == "contention" and runs[2]["message"] == "boom" and runs[1]["message"] is None
        doc = latest_report(conn, PROJECT)
        assert doc is not None and doc["runs"] == 3 and doc["tests"][0]["verdict"] == "flaky"
        assert json.loads(conn.execute("SELECT evidence FROM flaky_results LIMIT 1").fetchone()[0]) == ["e"]
        assert [(s.n_flaky, s.n_stable) for s in sessions(conn, PROJECT)] == [(1, 1)]
    finally:
        conn.close()


def test_a_fix_is_called_held_only_after_enough_clean_runs(tmp_path: Path) -> None:
    conn = connect(tmp_path / "agentdeck.db")
    t0 = time.time()
    try:
        # Before: fails 3 of 10 (p = 0.3): n = ln(0.05)/ln(0.7) = 9 clean runs are needed.
        save_report(conn, session({0: ["failed", "passed", "passed"] * 3 + ["passed"], 1: ["passed"] * 10}, t0))
        assert runs_needed(0.3) == 9
        [row] = compare(conn, PROJECT)
        # Nothing ran since it was found: it is failing as far as anyone knows.
        assert (row.nodeid, row.status, row.needed, row.before_rate, row.after_runs) == (
            NAMES[0],
            "still failing",
            9,
            0.3,
            0,
        )

        save_report(conn, session({0: ["passed"] * 5, 1: ["passed"] * 5}, t0 + 100))
        [row] = compare(conn, PROJECT)
        assert (row.status, row.after_runs, row.after_failures) == ("not yet", 5, 0)

        save_report(conn, session({0: ["passed"] * 5, 1: ["passed"] * 5}, t0 + 200))
        [row] = compare(conn, PROJECT)
        assert (row.status, row.after_runs) == ("fixed", 10)
        assert row.to_json()["after"] == {"runs": 10, "failures": 0, "failure_rate": 0.0}

        # It comes back (1 in 20), then a fix attempt that does not hold: compared with the session before it.
        save_report(conn, session({0: ["failed"] + ["passed"] * 19, 1: ["passed"] * 20}, t0 + 300))
        save_report(conn, session({0: ["passed", "failed"], 1: ["passed"] * 2}, t0 + 400))
        [row] = compare(conn, PROJECT)
        assert (row.status, row.before_rate, row.after_runs, row.after_failures) == ("still failing", 0.05, 2, 1)
        assert row.needed == 59
        assert [s.n_flaky for s in sessions(conn, PROJECT)] == [1, 0, 0, 1, 1]
        assert compare(conn, "/another/project") == []
    finally:
        conn.close()
