"""The `agentdeck` command. Thin: each subcommand module parses its flags and calls the library.

Each module in ``COMMAND_MODULES`` exposes ``register(subparsers, parents)`` which adds its
parser(s) and sets ``func`` to a ``run(args) -> int``. Heavy imports (Textual, uvicorn,
the SDKs) happen inside ``run`` so that ``agentdeck status`` starts fast.

Exit codes are part of the contract, so scripts can branch on them: 0 ok, 1 a check failed,
2 usage or config error, 3 gateway unreachable, 4 ``status`` while the emergency stop is on.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys
from typing import Sequence

from agentdeck import __version__
from agentdeck.errors import AgentdeckError

COMMAND_MODULES = (
    "console", "serve", "demo", "mock_upstream", "status", "stop", "run", "route",
    "savings", "diagnose", "flaky", "bench", "prices", "statusline", "completion",
)

EXIT_OK, EXIT_CHECK_FAILED, EXIT_USAGE, EXIT_UNREACHABLE, EXIT_STOPPED = 0, 1, 2, 3, 4

_EPILOG = ("exit codes: 0 ok, 1 a check failed (e.g. flaky --max-rate), 2 usage or config error, "
           "3 gateway unreachable, 4 `status` while STOPPED")


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad flag as one line (plus a hint), not a usage dump."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser(only: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The whole command tree (``only`` limits it to some commands, for the fast paths)."""
    help_ = "config file (default: $AGENTDECK_CONFIG, else the user's config.toml, else built-in defaults)"
    # The subcommands' --config defaults to SUPPRESS so `agentdeck --config P CMD` and `agentdeck CMD --config P`
    # both work: a subparser default would otherwise overwrite the top-level value with None.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", metavar="P", default=argparse.SUPPRESS, help=help_)
    parser = _Parser(prog="agentdeck", description="A local gateway and on-call console for LLM agents.",
                     epilog=_EPILOG)
    parser.add_argument("--version", action="version", version=f"agentdeck {__version__}")
    parser.add_argument("--config", metavar="P", default=None, help=help_)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMAND_MODULES if only is None else only:
        modname = f"agentdeck.cli.{name}"
        if importlib.util.find_spec(modname) is None:
            continue
        importlib.import_module(modname).register(sub, [common])
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["statusline"]:
        # Claude Code runs this after every turn: skip importing the other commands' modules.
        parser = build_parser(only=("statusline",))
    else:
        parser = build_parser()
    if "_ARGCOMPLETE" in os.environ:  # the shell asks for completions (see `agentdeck completion`)
        import argcomplete

        argcomplete.autocomplete(parser)  # prints the candidates and exits
    # `agentdeck` alone (or with only --config) opens the console.
    if not any(a in parser._subparsers._group_actions[0].choices for a in args_list if not a.startswith("-")):  # type: ignore[union-attr]
        if not any(a in ("-h", "--help", "--version") for a in args_list):
            args_list = ["console", *args_list]
    args = parser.parse_args(args_list)
    try:
        return int(args.func(args) or 0)
    except AgentdeckError as e:
        print(f"agentdeck: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
