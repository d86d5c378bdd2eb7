"""The data dir is created 0700 and the SQLite files (database, WAL, shared memory) are 0600 (issue 16 point 9)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from agentdeck.bus import Bus, RequestCompleted
from agentdeck.store import Store, connect, db_path


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


async def test_new_data_dir_and_files_are_owner_only(tmp_path: Path) -> None:
    old = os.umask(0o022)  # the usual umask, which used to give 0755 and 0644
    try:
        data = tmp_path / "nested" / "data"
        bus = Bus()
        store = await Store(db_path(data), bus, flush_interval_s=60).open()
        bus.publish(RequestCompleted(id="r1", key="dev", session=None, protocol="openai", endpoint="/v1/chat/completions",
                                     model_requested="m", model="m", provider="p", tier=None, rule=None, status=200,
                                     stream=False, request_body="a prompt"))
        assert await store.flush() == 1
        assert _mode(data) == 0o700
        files = sorted(p.name for p in data.iterdir())
        assert "agentdeck.db" in files and "agentdeck.db-wal" in files
        for name in files:
            assert _mode(data / name) == 0o600, name
        await store.close()
    finally:
        os.umask(old)


def test_existing_world_readable_database_is_tightened(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    db = data / "agentdeck.db"
    conn = connect(db)
    conn.close()
    os.chmod(db, 0o644)
    conn = connect(db)  # every opening (gateway or offline tool) goes through prepare()
    conn.execute("SELECT 1").fetchone()
    conn.close()
    assert _mode(db) == 0o600
    # A folder that existed before keeps its mode (it may be shared on purpose, e.g. /tmp).
    assert _mode(data) == 0o755
