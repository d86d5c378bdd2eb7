"""Fixtures for the limits tests: a hand-driven clock and a bus that keeps what it sees."""

from __future__ import annotations

from typing import Any, Callable

import pytest
from deck_support import FakeClock

from agentdeck.bus import Bus, Subscription
from agentdeck.config import LimitsConfig
from agentdeck.limits import ProviderLimiter


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1000.0)


@pytest.fixture
def bus() -> Bus:
    return Bus()


@pytest.fixture
def events(bus: Bus) -> Subscription:
    return bus.subscribe("test", maxlen=100_000)


@pytest.fixture
def make_limiter(bus: Bus) -> Callable[..., ProviderLimiter]:
    made: list[ProviderLimiter] = []

    def make(clock: Callable[[], float] | None = None, **limits: Any) -> ProviderLimiter:
        kw: dict[str, Any] = {}
        if clock is not None:
            kw["clock"] = clock
        lim = ProviderLimiter("prov", LimitsConfig(**limits), bus, **kw)
        made.append(lim)
        return lim

    yield make
    for lim in made:
        lim.close()
