"""Fixtures for the cluster tests live in cluster_support (importable by name from the test modules)."""

from cluster_support import *  # noqa: F401,F403
