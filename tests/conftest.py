"""Shared fixtures: the mock provider, a real gateway on a free loopback port, and SDK clients.

Everything is real: uvicorn serves the gateway on its own thread, the mock provider is
`agentdeck.sim` served by uvicorn, the database is a SQLite file under tmp_path.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from agentdeck.config import Config, parse_config
from agentdeck.sim import MockServer, MockSettings
from deck_support import GATEWAY_KEY, gateway_config_dict


def pytest_configure(config: pytest.Config) -> None:
    """The live-gateway registry of this run in a directory of its own: `status` in a test must not find
    the developer's running demo, and the developer's `status` must not list the tests' gateways."""
    import os
    import tempfile

    os.environ.setdefault("AGENTDECK_RUNTIME_DIR", tempfile.mkdtemp(prefix="agentdeck-test-runtime-"))

@pytest.fixture(scope="session")
def mock_server() -> Iterator[MockServer]:
    with MockServer() as m:
        yield m


@pytest.fixture
def mock(mock_server: MockServer) -> Iterator[MockServer]:
    """The shared mock provider, reset to defaults for each test."""
    mock_server.update(**dataclasses.asdict(MockSettings()))
    mock_server.reset()
    yield mock_server
    mock_server.update(**dataclasses.asdict(MockSettings()))


@pytest.fixture
def make_gateway(tmp_path: Path, mock: MockServer) -> Iterator[Callable[..., Any]]:
    """Start a real gateway (uvicorn, own thread and loop) against the mock; stopped at teardown."""
    from agentdeck.gateway.server import GatewayThread

    started: list[GatewayThread] = []

    def factory(data_dir: Path | None = None, upstream_url: str | None = None, **sections: Any) -> GatewayThread:
        d = data_dir or tmp_path / "data"
        cfg: Config = parse_config(gateway_config_dict(d, upstream_url or mock.url, **sections), "<test>")
        gt = GatewayThread(cfg).start()
        started.append(gt)
        return gt

    yield factory
    for gt in started:
        gt.stop()


@pytest.fixture
def gateway(make_gateway: Callable[..., Any]) -> Any:
    return make_gateway()


@pytest.fixture
def openai_client(gateway: Any) -> Any:
    import openai

    return openai.OpenAI(base_url=gateway.url + "/v1", api_key=GATEWAY_KEY, max_retries=0, timeout=20)


@pytest.fixture
def anthropic_client(gateway: Any) -> Any:
    import anthropic

    return anthropic.Anthropic(base_url=gateway.url, api_key=GATEWAY_KEY, max_retries=0, timeout=20)
