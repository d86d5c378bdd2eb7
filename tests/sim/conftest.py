"""Fixtures for the mock provider's tests: one MockServer per module, reset before every test."""

from __future__ import annotations

from typing import Iterator

import pytest

from agentdeck.sim import MockServer, MockSettings


@pytest.fixture(scope="module")
def _mock_server() -> Iterator[MockServer]:
    with MockServer() as m:
        yield m


@pytest.fixture
def mock(_mock_server: MockServer) -> MockServer:
    """A running mock with default settings and zeroed counters."""
    _mock_server.update(**MockSettings().to_dict())
    _mock_server.reset()
    return _mock_server
