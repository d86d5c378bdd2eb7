"""Fixtures for the limits tests live in limits_support (importable by name from the test modules)."""

from limits_support import *  # noqa: F401,F403
