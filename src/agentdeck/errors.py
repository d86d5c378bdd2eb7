"""Errors a user can act on. The CLI prints their message as one line, never a traceback."""


class AgentdeckError(Exception):
    """Base for errors whose message is meant for the user as-is."""


class ConfigError(AgentdeckError):
    """The configuration file is unreadable or invalid; the message names file, key path and reason."""


class GatewayUnreachable(AgentdeckError):
    """A command needed a running gateway and could not reach it."""
