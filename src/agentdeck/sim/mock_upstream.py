"""The mock provider's old import path, kept so `from agentdeck.sim.mock_upstream import ...` works.

The code lives in the package `agentdeck.sim.mock` (settings, answers, streams, server); this
module re-exports exactly its public names, so the two lists cannot drift apart.
"""

from agentdeck.sim.mock import *  # noqa: F403
from agentdeck.sim.mock import __all__  # noqa: F401
