"""Domain packages never import Textual: only ``agentdeck.tui`` may.

Why both checks: the subprocess import catches a transitive import (a domain module pulling
in a helper that pulls in Textual); the source scan catches an import hidden inside a
function that the first check would only see when that function runs.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import agentdeck

SRC = Path(agentdeck.__file__).resolve().parent
UI_PACKAGES = ("agentdeck.tui",)
IMPORT_RE = re.compile(r"^\s*(?:from\s+textual[\s.]|import\s+textual\b)", re.MULTILINE)


def domain_modules() -> list[str]:
    """Every module under src/agentdeck by file (namespace packages without __init__ included), minus the UI."""
    mods = []
    for path in SRC.rglob("*.py"):
        parts = path.relative_to(SRC).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        name = ".".join(("agentdeck", *parts))
        if name.startswith(UI_PACKAGES) or name.endswith("__main__"):
            continue
        mods.append(name)
    return sorted(set(mods))


def test_importing_every_domain_module_does_not_load_textual() -> None:
    mods = domain_modules()
    assert "agentdeck.gateway.app" in mods and "agentdeck.demo" in mods
    code = (
        "import importlib, json, sys\n"
        f"mods = {mods!r}\n"
        "failed = {}\n"
        "for m in mods:\n"
        "    try:\n"
        "        importlib.import_module(m)\n"
        "    except Exception as e:\n"
        "        failed[m] = repr(e)\n"
        "import agentdeck.cli\n"
        "agentdeck.cli.build_parser()\n"
        "print(json.dumps({'textual': sorted(k for k in sys.modules if k == 'textual' or k.startswith('textual.')),"
        " 'failed': failed}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["textual"] == [], f"a domain module imported Textual: {result['textual'][:5]}"
    assert result["failed"] == {}, f"domain modules failed to import: {result['failed']}"


def test_no_domain_source_file_mentions_a_textual_import() -> None:
    offenders = []
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC)
        if rel.parts[0] == "tui":
            continue
        if IMPORT_RE.search(path.read_text("utf-8")):
            offenders.append(str(rel))
    assert offenders == [], f"only agentdeck/tui may import textual: {offenders}"


def test_the_check_would_catch_a_textual_import() -> None:
    assert IMPORT_RE.search("def f():\n    from textual.app import App\n")
    assert IMPORT_RE.search("import textual\n")
    assert not IMPORT_RE.search("# textual is only for the console\nimport textwrap\n")


GATEWAY_APP_RE = re.compile(r"^\s*(?:from\s+agentdeck\.gateway\.app\s+import|import\s+agentdeck\.gateway\.app\b|"
                            r"from\s+agentdeck\.gateway\s+import\s+(?:[\w, ]*\b)?app\b)", re.MULTILINE)
STAGES = ("admission", "routing", "reservation", "upstream", "accounting", "pipeline", "call")


def test_the_stages_and_the_wire_layer_never_import_the_composition_root() -> None:
    """``gateway.app`` builds the stages; a stage reaching back into it is the import circle the
    pipeline replaced. Only the server (which serves the app) and the console's engine may import it;
    the admin endpoints still name it for their type hints."""
    # the entry points that serve the app (one process, or N workers), and admin's type-only import
    allowed = {SRC / "gateway" / "server.py", SRC / "gateway" / "workers.py", SRC / "gateway" / "admin.py"}
    offenders = [str(p.relative_to(SRC)) for p in SRC.rglob("*.py")
                 if p not in allowed and "tui" not in p.parts and GATEWAY_APP_RE.search(p.read_text(encoding="utf-8"))]
    assert offenders == [], f"modules importing agentdeck.gateway.app: {offenders}"
    for stage in STAGES:
        text = (SRC / "gateway" / f"{stage}.py").read_text(encoding="utf-8")
        assert "import Gateway" not in text, f"gateway/{stage}.py reaches the Gateway"
    for path in (SRC / "wire").glob("*.py"):
        assert "agentdeck.gateway" not in path.read_text(encoding="utf-8"), f"{path.name} imports the gateway"
