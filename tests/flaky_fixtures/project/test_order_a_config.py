"""Order-dependent (brittle): test_config_is_ready passes only after test_load_config, its state-setter."""

import shared_state


def test_load_config() -> None:
    shared_state.CONFIG["ready"] = True
    assert shared_state.CONFIG["ready"]


def test_config_is_ready() -> None:
    assert shared_state.CONFIG["ready"], "config was never loaded"
