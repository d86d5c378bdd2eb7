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

PROVIDER_KEY_ANTHROPIC = "sk-ant-provider-SECRET-aaaaaaaaaaaa"
PROVIDER_KEY_OPENAI = "sk-provider-SECRET-bbbbbbbbbbbbbbbb"
GATEWAY_KEY = "gw-dev-SECRET-cccccccccccc"
ADMIN_TOKEN = "admin-SECRET-dddddddddddd"


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


def gateway_config_dict(data_dir: Path, upstream_url: str, **sections: Any) -> dict[str, Any]:
    """A config with both protocols served by the mock, one caller key and an admin token."""
    cfg: dict[str, Any] = {
        "gateway": {"host": "127.0.0.1", "port": 0, "admin_token": ADMIN_TOKEN, "data_dir": str(data_dir),
                    "store_flush_interval_s": 0.2, "shutdown_grace_s": 2},
        "keys": [{"name": "dev", "key": GATEWAY_KEY}],
        "budget": {"hourly_usd": 1000.0, "daily_usd": 5000.0},
        "providers": {
            "anthropic": {"protocol": "anthropic", "base_url": upstream_url, "api_key": PROVIDER_KEY_ANTHROPIC,
                          "models": ["claude-haiku-4-5", "claude-sonnet-4-5", "claude-opus-4-5"],
                          "retry": {"backoff_base_s": 0.01, "backoff_max_s": 0.05}},
            "openai": {"protocol": "openai", "base_url": upstream_url, "api_key": PROVIDER_KEY_OPENAI,
                       "models": ["gpt-4o-mini", "gpt-4o", "gpt-4.1"],
                       "retry": {"backoff_base_s": 0.01, "backoff_max_s": 0.05}},
        },
    }
    for name, value in sections.items():
        if isinstance(value, dict) and isinstance(cfg.get(name), dict):
            merged = dict(cfg[name])
            merged.update(value)
            cfg[name] = merged
        else:
            cfg[name] = value
    return cfg


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
