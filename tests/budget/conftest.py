"""Fixtures for the budget tests live in budget_support (importable by name from the test modules)."""

from budget_support import *  # noqa: F401,F403
