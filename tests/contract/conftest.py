"""Fixtures of the contract suite: one mock provider and one served gateway for the whole session.

Why session scope: starting `agentdeck serve` as a subprocess costs seconds on a loaded
2-core machine; every module that only needs *a* gateway shares this one (tests that need a
differently configured or restarted gateway start their own).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from contract_support import (
    Served,
    gateway_doc,
    isolated_env,
    serve_gateway,
    write_config,
)

from agentdeck.sim import MockServer, MockSettings


@dataclass
class ServedGateway:
    url: str
    config: Path
    data_dir: Path
    env: dict[str, str]
    served: Served
    home: Path


@pytest.fixture(scope="session")
def contract_mock() -> Iterator[MockServer]:
    """The simulated provider (both protocols), in this process on a free loopback port."""
    with MockServer() as m:
        yield m


@pytest.fixture
def mock_defaults(contract_mock: MockServer) -> Iterator[MockServer]:
    """The shared mock with default settings, restored after the test that changed them."""
    contract_mock.update(**dataclasses.asdict(MockSettings()))
    yield contract_mock
    contract_mock.update(**dataclasses.asdict(MockSettings()))


@pytest.fixture(scope="session")
def contract_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("contract")


@pytest.fixture(scope="session")
def gw(contract_root: Path, contract_mock: MockServer) -> Iterator[ServedGateway]:
    """`agentdeck serve --config P --port 0` against the mock, shared by the whole suite."""
    home = contract_root / "home"
    data_dir = contract_root / "gw-data"
    config = write_config(contract_root / "gw.toml", gateway_doc(data_dir, contract_mock.url))
    env = isolated_env(home)
    served = serve_gateway(config, env, contract_root / "logs", "gw")
    try:
        yield ServedGateway(served.url, config, data_dir, env, served, home)
    finally:
        served.stop()


@pytest.fixture
def gw_clean(gw: ServedGateway) -> Iterator[ServedGateway]:
    """The shared gateway, with any stop lifted before and after the test (a failed test must not leak a stop)."""
    import httpx
    from contract_support import admin

    def lift() -> None:
        st = httpx.get(gw.url + "/admin/status", headers=admin(), timeout=10).json()
        for key in list((st.get("stopped_keys") or {}).keys()):
            httpx.post(gw.url + "/admin/resume", headers=admin(), json={"key": key}, timeout=10)
        if st.get("stopped"):
            httpx.post(gw.url + "/admin/resume", headers=admin(), json={"key": None}, timeout=10)

    lift()
    yield gw
    lift()

