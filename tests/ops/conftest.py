"""Fixtures for the operations tests: the mock provider, a config on it, a served gateway."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest
from ops_support import Served, ops_env, write_config

from agentdeck.sim import MockServer, MockSettings


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    with MockServer(MockSettings(latency_ms=1.0)) as m:
        yield m.url


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return ops_env(tmp_path)


@pytest.fixture
def config(tmp_path: Path, upstream: str) -> Path:
    return write_config(tmp_path / "cfg" / "config.toml", upstream, tmp_path / "data")


@pytest.fixture
def served(tmp_path: Path, env: dict[str, str], config: Path) -> Iterator[Served]:
    s = Served(["--config", str(config)], env, tmp_path / "logs")
    try:
        yield s
    finally:
        s.stop()
