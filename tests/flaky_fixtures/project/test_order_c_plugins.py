"""The polluter: registers a plugin in module state and never removes it."""

import shared_state


def test_register_plugin() -> None:
    shared_state.REGISTRY["csv"] = "CsvExporter"
    assert "csv" in shared_state.REGISTRY
