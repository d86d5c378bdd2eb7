"""Simulated upstreams: the mock LLM provider used by tests, the demo and the benchmark."""

from agentdeck.sim.mock import (
    MAGIC_WORDS,
    MockServer,
    MockSettings,
    MockState,
    make_app,
    run_mock_process,
    wait_for_mock,
)

__all__ = [
    "MAGIC_WORDS",
    "MockServer",
    "MockSettings",
    "MockState",
    "make_app",
    "run_mock_process",
    "wait_for_mock",
]
