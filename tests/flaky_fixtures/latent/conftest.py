"""Creates the shared orders database once, before any run (as an app's migrations would)."""

import sqlite3

from test_orders_db import DB, SLOTS


def pytest_configure(config) -> None:
    con = sqlite3.connect(DB, timeout=5, isolation_level=None)
    try:
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("CREATE TABLE IF NOT EXISTS slots (id INTEGER PRIMARY KEY, holder TEXT)")
        con.execute("DELETE FROM slots")
        con.executemany("INSERT INTO slots (id, holder) VALUES (?, NULL)", [(i,) for i in range(SLOTS)])
    finally:
        con.close()
