"""Shared fixtures for the flaky runner's tests: real runs of the fixture projects, once per session."""

from __future__ import annotations

from pathlib import Path

import pytest
from flaky_support import FAST, FIXTURES, fast_pytest

from agentdeck.flaky.runner import FlakyOptions, FlakyReport, run_flaky


@pytest.fixture
def fast_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in FAST.items():
        monkeypatch.setenv(k, v)


@pytest.fixture(scope="session")
def fixture_dir() -> Path:
    return FIXTURES


@pytest.fixture(scope="session")
def project_report() -> FlakyReport:
    """The full diagnosis of the fixture project (every cause, a known answer each); ~30 s on 2 busy cores."""
    with fast_pytest():
        return run_flaky(FlakyOptions(project_dir=FIXTURES / "project", runs=24, workers=2, seed=7, timeout=30))


@pytest.fixture(scope="session")
def mini_report() -> FlakyReport:
    """A quick diagnosis of the three-test mini project (stable, broken, flaky by randomness)."""
    with fast_pytest():
        return run_flaky(
            FlakyOptions(project_dir=FIXTURES / "mini", runs=6, shuffles=2, alone_runs=6, workers=2, seed=5)
        )


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    """A config whose database lives in tmp_path (never the user's data dir)."""
    path = tmp_path / "agentdeck.toml"
    path.write_text(f'[gateway]\ndata_dir = "{tmp_path / "data"}"\n')
    return path
