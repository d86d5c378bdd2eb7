"""Fixtures for the routing tests live in routing_support (importable by name from the test modules)."""

from routing_support import *  # noqa: F401,F403
