"""One SQLite database for everything: requests (the spend ledger), stops, alerts, diagnoses, flaky runs."""

from agentdeck.store.db import DB_NAME, connect, db_path, prepare
from agentdeck.store.writer import Store

__all__ = ["DB_NAME", "Store", "connect", "db_path", "prepare"]
