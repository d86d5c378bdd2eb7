"""Opening the database and applying migrations.

Migrations are the numbered ``.sql`` files in ``migrations/``, applied in name order and
recorded by name in ``schema_migrations``, so each part of agentdeck (core, diagnose,
flaky) can add its own file without coordinating a single version counter.
The offline tools (diagnose, flaky) use the synchronous ``connect()``; the gateway uses
:class:`agentdeck.store.writer.Store` on top of aiosqlite.
"""

from __future__ import annotations

import os
import sqlite3
import time
from importlib import resources
from pathlib import Path

DB_NAME = "agentdeck.db"


def db_path(data_dir: str | os.PathLike[str]) -> Path:
    return Path(os.path.expanduser(str(data_dir))) / DB_NAME


def _migration_files() -> list[tuple[str, str]]:
    pkg = resources.files("agentdeck.store") / "migrations"
    files = sorted((p.name, p.read_text(encoding="utf-8")) for p in pkg.iterdir() if p.name.endswith(".sql"))
    return files


def migrate(conn: sqlite3.Connection) -> list[str]:
    """Apply every migration not yet applied; return the names applied now."""
    conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at REAL NOT NULL)")
    done = {r[0] for r in conn.execute("SELECT name FROM schema_migrations")}
    applied = []
    for name, sql in _migration_files():
        if name in done:
            continue
        conn.executescript("BEGIN;\n" + sql + f"\nINSERT INTO schema_migrations VALUES ('{name}', {time.time()});\nCOMMIT;")
        applied.append(name)
    return applied


# Prompts (with ``log_bodies``), spend and session digests live in these files: owner only.
DIR_MODE = 0o700
FILE_MODE = 0o600
_SIDE_FILES = ("-wal", "-shm", "-journal")


def _private_dir(d: Path) -> None:
    """Create the data dir owner-only. One that already exists keeps its mode: it may be shared
    on purpose (a data_dir of ``/tmp`` must not be locked down), and the files in it are 0600."""
    if not d.exists():
        d.parent.mkdir(parents=True, exist_ok=True)
        try:
            d.mkdir(mode=DIR_MODE)
        except FileExistsError:
            return  # another process made it a moment ago
        os.chmod(d, DIR_MODE)  # mkdir's mode is masked by the umask; say it exactly


def _private_files(p: Path) -> None:
    """The database owner-only; SQLite gives its WAL and shared-memory files the database's mode."""
    fd = os.open(p, os.O_RDWR | os.O_CREAT, FILE_MODE)
    os.close(fd)
    for f in (p, *(p.with_name(p.name + suffix) for suffix in _SIDE_FILES)):
        try:
            if f.stat().st_mode & 0o777 != FILE_MODE:
                os.chmod(f, FILE_MODE)
        except FileNotFoundError:
            pass


def prepare(path: str | os.PathLike[str]) -> Path:
    """Create the folder (0700) and file (0600), switch to WAL, apply migrations. Safe to call from many processes."""
    p = Path(path)
    _private_dir(p.parent)
    _private_files(p)
    conn = sqlite3.connect(p, timeout=30, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("COMMIT")
        migrate(conn)
    finally:
        conn.close()
    _private_files(p)
    return p


def connect(path: str | os.PathLike[str]) -> sqlite3.Connection:
    """A synchronous connection for the offline tools (migrated, WAL, rows as sqlite3.Row)."""
    p = prepare(path)
    conn = sqlite3.connect(p, timeout=30)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn
