"""The README is the front door and docs/ the rest: checks that keep them that way.

Why tests for prose: the README's two quick-start lines are part of the outside contract,
the command table is where a newcomer learns the commands, and a moved doc leaves links
pointing at nothing without anyone noticing. Each check reads the real files.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from agentdeck.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [README, ROOT / "CONTRIBUTING.md", *DOCS]
LINK_RE = re.compile(r"\]\(([^)\s]+)\)")
FENCE_RE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)


def anchors(page: Path) -> set[str]:
    """The anchors GitHub makes from a page's headings (lowercase, punctuation dropped, spaces to '-')."""
    text = FENCE_RE.sub("", page.read_text())
    out = set()
    for m in re.finditer(r"^#{1,6} (.+)$", text, re.MULTILINE):
        out.add(re.sub(r"[^\w\- ]", "", m.group(1).strip().lower()).replace(" ", "-"))
    return out


def test_readme_shows_the_two_quick_start_lines() -> None:
    blocks = [b.strip("`\n ") for b in FENCE_RE.findall(README.read_text())]
    lines = {line.strip() for b in blocks for line in b.splitlines()}
    assert 'pip install -e ".[dev]" && agentdeck demo' in lines
    assert 'pip install -e ".[dev]" && pytest' in lines


def test_every_command_is_in_the_readme_table() -> None:
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    table = [line for line in README.read_text().splitlines() if line.startswith("| `agentdeck")]
    missing = [name for name in commands if not any(f"agentdeck {name}" in row for row in table)]
    assert commands and not missing, f"commands missing from the README's command table: {missing}"


def test_readme_stays_a_front_door() -> None:
    n = len(README.read_text().splitlines())
    assert n <= 300, f"README.md has {n} lines; long texts belong in docs/"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page: Path) -> None:
    bad = []
    for target in LINK_RE.findall(FENCE_RE.sub("", page.read_text())):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            bad.append(f"{target} (no such file)")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            bad.append(f"{target} (no such heading)")
    assert not bad, f"{page.relative_to(ROOT)}: {bad}"


def test_docs_index_lists_every_doc() -> None:
    index = (ROOT / "docs" / "index.md").read_text()
    unlisted = [p.name for p in DOCS if p.name != "index.md" and f"]({p.name})" not in index]
    assert not unlisted, f"docs/index.md does not link: {unlisted}"
