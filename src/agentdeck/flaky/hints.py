"""Pointing at the line to change: calls in a test's source that match its diagnosed cause.

Read with ``ast`` from the file on disk (the runner never imports the user's tests), so a
recommendation can say "the sleep at test_x.py:31" instead of "somewhere, a sleep".
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

SLEEPS = {"sleep", "wait_for"}
RANDOM_FUNCS = {
    "random",
    "randint",
    "randrange",
    "choice",
    "choices",
    "shuffle",
    "sample",
    "uniform",
    "gauss",
    "getrandbits",
}
NETWORK = {
    "connect",
    "create_connection",
    "urlopen",
    "request",
    "get",
    "post",
    "put",
    "delete",
    "getaddrinfo",
    "gethostbyname",
}
NETWORK_MODULES = {"requests", "httpx", "urllib", "aiohttp", "socket", "http", "smtplib", "ftplib"}


@dataclass
class Hints:
    sleeps: list[str] = field(default_factory=list)
    randomness: list[str] = field(default_factory=list)
    network: list[str] = field(default_factory=list)
    fixed_ports: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    environ: list[str] = field(default_factory=list)


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    if isinstance(node, ast.Call):
        return _dotted(node.func) + "()"
    return "?"


def find_function(tree: ast.Module, names: list[str]) -> ast.AST | None:
    """Follow Class::method path parts to the test function's definition."""
    scope: ast.AST = tree
    for name in names:
        found = None
        for node in ast.iter_child_nodes(scope):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name == name:
                found = node
        if found is None:
            return None
        scope = found
    return scope


def source_hints(root: Path, nodeid: str) -> Hints:
    hints = Hints()
    parts = nodeid.split("::")
    path = root / parts[0]
    try:
        source = path.read_text(encoding="utf-8")
        tree = ast.parse(source)
    except (OSError, SyntaxError, ValueError):
        return hints
    names = [p.split("[", 1)[0] for p in parts[1:]]
    fn = find_function(tree, names)
    if fn is None:
        return hints
    rel = parts[0]
    for node in ast.walk(fn):
        if isinstance(node, ast.Subscript) and _dotted(node.value) == "os.environ":
            hints.environ.append(f"{rel}:{node.lineno}")
        if not isinstance(node, ast.Call):
            continue
        name = _dotted(node.func)
        last = name.rsplit(".", 1)[-1]
        where = f"{rel}:{node.lineno}"
        text = ast.get_source_segment(source, node) or name
        text = text if len(text) <= 70 else text[:67] + "..."
        shown = f"{where} ({text})"
        head = name.split(".", 1)[0]
        if last in SLEEPS:
            hints.sleeps.append(shown)
        elif head == "random" or (last in RANDOM_FUNCS and head in ("random", "rng", "np", "numpy")):
            hints.randomness.append(shown)
        elif last == "bind" and node.args and isinstance(node.args[0], ast.Tuple):
            elts = node.args[0].elts
            if (
                len(elts) >= 2
                and isinstance(elts[1], ast.Constant)
                and isinstance(elts[1].value, int)
                and elts[1].value > 0
            ):
                hints.fixed_ports.append(shown)
        elif head in NETWORK_MODULES or last in ("create_connection", "urlopen", "getaddrinfo"):
            hints.network.append(shown)
        elif name in ("open", "os.open", "Path.open") or last in ("read_text", "read_bytes"):
            hints.files.append(shown)
        elif name in ("os.getenv", "os.environ.get"):
            hints.environ.append(shown)
    return hints
