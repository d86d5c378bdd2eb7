"""Fixtures for the budget tests: a config, a bus with a catch-all subscriber, a real Store on a tmp file."""

from __future__ import annotations

from pathlib import Path
from typing import Any, AsyncIterator

import pytest

from agentdeck.bus import Alert, Bus, Subscription
from agentdeck.config import Config, parse_config
from agentdeck.store import Store, db_path


class FakeClock:
    """A clock the test moves by hand (time is an input of the ledger, not the thing under test)."""

    def __init__(self, t: float = 1_700_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, s: float) -> None:
        self.t += s


def make_config(tmp_path: Path, **sections: Any) -> Config:
    data: dict[str, Any] = {"gateway": {"data_dir": str(tmp_path / "data"), "admin_token": "admintok"}}
    data.update(sections)
    return parse_config(data, "<test>", environ={})


def alerts(sub: Subscription) -> list[Alert]:
    return [e for e in sub.drain() if isinstance(e, Alert)]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def bus() -> Bus:
    return Bus()


@pytest.fixture
def cfg(tmp_path: Path) -> Config:
    return make_config(tmp_path)


@pytest.fixture
async def store(tmp_path: Path, bus: Bus) -> AsyncIterator[Store]:
    s = Store(db_path(tmp_path / "data"), bus, flush_interval_s=0.05)
    await s.open()
    yield s
    await s.close()
