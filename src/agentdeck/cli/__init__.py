"""The `agentdeck` command. Thin: each subcommand module parses its flags and calls the library.

Each module in ``COMMAND_MODULES`` exposes ``register(subparsers, parents)`` which adds its
parser(s) and sets ``func`` to a ``run(args) -> int``. Heavy imports (Textual, uvicorn,
the SDKs) happen inside ``run`` so that ``agentdeck status`` starts fast.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from typing import Sequence

from agentdeck.errors import AgentdeckError

COMMAND_MODULES = (
    "console", "serve", "demo", "mock_upstream", "status", "stop", "run", "route",
    "savings", "diagnose", "flaky", "bench", "prices",
)


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad flag as one line (plus a hint), not a usage dump."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    help_ = "config file (default: $AGENTDECK_CONFIG, else ~/.config/agentdeck/config.toml, else built-in defaults)"
    # The subcommands' --config defaults to SUPPRESS so `agentdeck --config P CMD` and `agentdeck CMD --config P`
    # both work: a subparser default would otherwise overwrite the top-level value with None.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", metavar="P", default=argparse.SUPPRESS, help=help_)
    parser = _Parser(prog="agentdeck", description="A local gateway and on-call console for LLM agents.")
    parser.add_argument("--config", metavar="P", default=None, help=help_)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMAND_MODULES:
        modname = f"agentdeck.cli.{name}"
        if importlib.util.find_spec(modname) is None:
            continue
        importlib.import_module(modname).register(sub, [common])
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    # `agentdeck` alone (or with only --config) opens the console.
    if not any(a in parser._subparsers._group_actions[0].choices for a in args_list if not a.startswith("-")):  # type: ignore[union-attr]
        if not any(a in ("-h", "--help") for a in args_list):
            args_list = ["console", *args_list]
    args = parser.parse_args(args_list)
    try:
        return int(args.func(args) or 0)
    except AgentdeckError as e:
        print(f"agentdeck: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
