"""`agentdeck completion bash|zsh|fish`: the shell's completion script, from the one parser.

Why argcomplete: the script asks `agentdeck` itself for candidates (the dispatcher answers when
``_ARGCOMPLETE`` is set), so every command and flag the parser knows completes in all three
shells, and a new command needs no second list to keep in step.

    bash:  source <(agentdeck completion bash)          (or write it to ~/.local/share/bash-completion/completions/agentdeck)
    zsh:   source <(agentdeck completion zsh)
    fish:  agentdeck completion fish > ~/.config/fish/completions/agentdeck.fish
"""

from __future__ import annotations

import argparse
from typing import Any

SHELLS = ("bash", "zsh", "fish")


def register(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("completion", parents=parents, help="print the shell completion script (bash, zsh or fish)",
                       description="Print a completion script; e.g. `source <(agentdeck completion bash)` in ~/.bashrc, "
                                   "or `agentdeck completion fish > ~/.config/fish/completions/agentdeck.fish`.")
    p.add_argument("shell", choices=SHELLS, help="the shell to complete in")
    p.set_defaults(func=run)


def script(shell: str, executable: str = "agentdeck") -> str:
    """The completion script for ``shell`` that completes ``executable``."""
    import argcomplete

    return argcomplete.shellcode([executable], shell=shell)


def run(args: argparse.Namespace) -> int:
    print(script(args.shell), end="")
    return 0
