"""agentdeck: a local gateway and on-call console for LLM agents."""

__version__ = "0.1.0"
