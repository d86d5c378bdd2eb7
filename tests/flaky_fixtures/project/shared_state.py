"""Module-level state shared by test modules, like an app's plugin registry and loaded config."""

REGISTRY: dict[str, str] = {}
CONFIG: dict[str, object] = {"ready": False}
