"""Fixtures for the routing tests: configs built from dicts, and TOML files for the CLI."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Callable

import pytest

from agentdeck.config import Config, parse_config

TASKS_FILE = Path(__file__).with_name("routing_tasks.toml")


def make_config(tmp_path: Path, **routing: Any) -> Config:
    data: dict[str, Any] = {"gateway": {"data_dir": str(tmp_path / "data")}}
    if routing:
        data["routing"] = routing
    return parse_config(data, "<test>", environ={})


def labelled_tasks() -> list[dict[str, Any]]:
    return tomllib.loads(TASKS_FILE.read_text(encoding="utf-8"))["task"]


@pytest.fixture
def config_file(tmp_path: Path) -> Callable[[str], Path]:
    """Write a TOML config (data_dir under tmp_path is prepended) and return its path."""

    def write(extra: str = "") -> Path:
        p = tmp_path / "agentdeck.toml"
        p.write_text(f'[gateway]\ndata_dir = "{tmp_path / "data"}"\n\n{extra}', encoding="utf-8")
        return p

    return write
