"""Fails only when 4 copies run at once: every run shares one SQLite database inside the project.

The database hands out 2 connection slots. Two runs at once (the runner's 2 workers, a CI with
2 jobs) never notice; with 4 runs at the same moment, two find them all taken.
"""

import os
import sqlite3
import time
from pathlib import Path

DB = Path(__file__).resolve().parent / "orders.sqlite3"
SLOTS = 2


def test_reserves_a_connection_slot() -> None:
    con = sqlite3.connect(DB, timeout=5, isolation_level=None)
    me = str(os.getpid())
    try:
        con.execute("BEGIN IMMEDIATE")
        free = con.execute("SELECT id FROM slots WHERE holder IS NULL LIMIT 1").fetchone()
        if free is not None:
            con.execute("UPDATE slots SET holder = ? WHERE id = ?", (me, free[0]))
        con.execute("COMMIT")
        assert free is not None, f"database is full: all {SLOTS} connection slots are in use"
        time.sleep(0.05)  # the work done on the connection
    finally:
        con.execute("UPDATE slots SET holder = NULL WHERE holder = ?", (me,))
        con.close()
