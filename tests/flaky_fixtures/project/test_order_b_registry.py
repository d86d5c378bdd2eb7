"""Order-dependent (victim): fails when test_order_c_plugins.py::test_register_plugin ran before it."""

import shared_state


def test_registry_starts_empty() -> None:
    assert shared_state.REGISTRY == {}
