"""The mock provider's old import path, kept so `from agentdeck.sim.mock_upstream import ...` works.

The code lives in the package `agentdeck.sim.mock` (settings, answers, streams, server).
"""

from agentdeck.sim.mock import (
    MAGIC_WORDS,
    Magic,
    MockApp,
    MockServer,
    MockSettings,
    MockState,
    estimate_tokens,
    format_go_duration,
    make_app,
    parse_magic,
    run_mock_process,
    serve_forever,
    settings_to_argv,
    wait_for_mock,
)

__all__ = [
    "MAGIC_WORDS",
    "Magic",
    "MockApp",
    "MockServer",
    "MockSettings",
    "MockState",
    "estimate_tokens",
    "format_go_duration",
    "make_app",
    "parse_magic",
    "run_mock_process",
    "serve_forever",
    "settings_to_argv",
    "wait_for_mock",
]
