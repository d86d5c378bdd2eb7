"""Shared state behind small interfaces: spend (the ledger), the emergency stop, provider limits.

The pipeline's stages use only these interfaces, so that state another process must
share (cluster mode) is a second implementation of them, not a change to the stages.
``local`` is the in-process implementation every gateway has today.
"""

from agentdeck.state.interfaces import LimitState, SessionState, SpendState, StateBackend, StopState
from agentdeck.state.local import LocalBackend

__all__ = ["LimitState", "LocalBackend", "SessionState", "SpendState", "StateBackend", "StopState"]
