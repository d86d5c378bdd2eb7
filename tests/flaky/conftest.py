"""Shared fixtures for the flaky runner's tests: real runs of the fixture projects, once per session."""

from __future__ import annotations

import shutil
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


@pytest.fixture(scope="session")
def causes_report(tmp_path_factory: pytest.TempPathFactory) -> FlakyReport:
    """The diagnosis of the `causes` project (issue 18's cases, a known answer each); ~30 s on 2 cores.

    Run on a copy: some of its tests write inside the project (that is the point of them).
    """
    proj = tmp_path_factory.mktemp("causes") / "causes"
    shutil.copytree(FIXTURES / "causes", proj)
    with fast_pytest():
        return run_flaky(FlakyOptions(project_dir=proj, runs=24, workers=2, seed=7, timeout=30))


@pytest.fixture(scope="session")
def latent_report(tmp_path_factory: pytest.TempPathFactory) -> FlakyReport:
    """Hunt mode on the `latent` project (tests that fail only under stress); a few seconds."""
    proj = tmp_path_factory.mktemp("latent") / "latent"
    shutil.copytree(FIXTURES / "latent", proj)
    with fast_pytest():
        return run_flaky(
            FlakyOptions(project_dir=proj, runs=24, shuffles=4, workers=2, seed=3, timeout=30, hunt=True, budget_s=120)
        )


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    """A config whose database lives in tmp_path (never the user's data dir)."""
    path = tmp_path / "agentdeck.toml"
    path.write_text(f'[gateway]\ndata_dir = "{tmp_path / "data"}"\n')
    return path
