"""Errors a user can act on. The CLI prints their message as one line, never a traceback."""


class AgentdeckError(Exception):
    """Base for errors whose message is meant for the user as-is.

    ``exit_code`` is what the command exits with (CONTRACT.md: 2 usage or config error, 3 gateway
    unreachable), so a script can tell a typo from a gateway that is down."""

    exit_code: int = 2


class ConfigError(AgentdeckError):
    """The configuration file is unreadable or invalid; the message names file, key path and reason."""


class GatewayUnreachable(AgentdeckError):
    """A command needed a running gateway and could not reach it."""

    exit_code = 3


class AdminTokenRefused(GatewayUnreachable):
    """The gateway answered but refused the admin token: a configuration problem, not an outage."""

    exit_code = 2
