"""Fixtures for the diagnosis tests: a temp data dir, its config file, and a real SQLite log."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest

from agentdeck.store import connect, db_path

HERE = Path(__file__).parent


@pytest.fixture
def labelled() -> dict[str, Any]:
    return json.loads((HERE / "diagnose_labelled_errors.json").read_text(encoding="utf-8"))


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    d.mkdir()
    return d


@pytest.fixture
def config_file(tmp_path: Path, data_dir: Path) -> Path:
    p = tmp_path / "agentdeck.toml"
    p.write_text(f'[gateway]\ndata_dir = "{data_dir}"\n', encoding="utf-8")
    return p


@pytest.fixture
def conn(data_dir: Path) -> Iterator[sqlite3.Connection]:
    c = connect(db_path(data_dir))
    yield c
    c.close()


class CLI:
    """Runs `python -m agentdeck` in a fresh process against the temp config (HOME is a temp dir too)."""

    def __init__(self, config: Path, home: Path) -> None:
        self.config = config
        self.env = {**os.environ, "AGENTDECK_CONFIG": str(config), "HOME": str(home), "COLUMNS": "200",
                    "NO_COLOR": "1", "PYTHONIOENCODING": "utf-8"}
        self.env.pop("AGENTDECK_KEY", None)

    def __call__(self, *args: str, input: str | None = None, cwd: Path | None = None,
                 env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "agentdeck", *args], input=input, capture_output=True, text=True,
            env={**self.env, **(env or {})}, cwd=cwd, timeout=timeout, encoding="utf-8",
        )


@pytest.fixture
def cli(config_file: Path, tmp_path: Path) -> CLI:
    home = tmp_path / "home"
    home.mkdir()
    return CLI(config_file, home)
