"""Fails only when 4 copies run at once: every run uses the same SQLite file inside the project.

Each run holds the write lock for ~12 ms and waits up to 40 ms for it: a second run at the
same moment waits and succeeds, the fourth of four gives up ("database is locked").
"""

import sqlite3
import time
from pathlib import Path

DB = Path(__file__).resolve().parent / "orders.sqlite3"


def test_order_count_after_insert() -> None:
    con = sqlite3.connect(DB, timeout=0.04, isolation_level=None)
    try:
        con.execute("BEGIN IMMEDIATE")
        con.execute("CREATE TABLE IF NOT EXISTS orders (id INTEGER)")
        con.execute("DELETE FROM orders")
        con.execute("INSERT INTO orders VALUES (1)")
        time.sleep(0.012)  # the rest of the transaction's work
        assert con.execute("SELECT COUNT(*) FROM orders").fetchone()[0] == 1
        con.execute("COMMIT")
    finally:
        con.close()
