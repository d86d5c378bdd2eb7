"""Closing the loop for rules problems: append the new rule to the project's CLAUDE.md / AGENTS.md.

Why show a diff first and refuse stale writes: these files steer every future agent session, so a
change to them must be seen before it is made, and a write must never clobber an edit someone made
between the preview and the confirmation.
"""

from __future__ import annotations

import difflib
import os
import re
import tempfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from agentdeck.errors import AgentdeckError

RULE_FILES = ("CLAUDE.md", "AGENTS.md")
_RULES_HEADING = re.compile(r"^##\s+rules\b.*$", re.IGNORECASE | re.MULTILINE)
_NEXT_H2 = re.compile(r"^##\s", re.MULTILINE)


class RulesFileError(AgentdeckError):
    """The rule is empty, or the file cannot be read or changed safely."""


@dataclass(frozen=True)
class Rule:
    """What the framework asks for: the rule, one correct example, and the anti-pattern to avoid."""

    rule: str
    example: str = ""
    do_not: str = ""

    def lines(self) -> list[str]:
        def one_line(s: str) -> str:
            return " ".join(s.split())

        if not self.rule.strip():
            raise RulesFileError("the rule is empty; write the behaviour the agent must follow")
        out = [f"- {one_line(self.rule)}"]
        if self.example.strip():
            out.append(f"  - Example: {one_line(self.example)}")
        if self.do_not.strip():
            out.append(f"  - DO NOT: {one_line(self.do_not)}")
        return out


@dataclass(frozen=True)
class RulePlan:
    path: Path
    before: str
    after: str
    diff: str

    @property
    def changed(self) -> bool:
        return self.before != self.after


def choose_file(project_dir: Path, prefer: str | None = None) -> Path:
    """CLAUDE.md if the project has one, else AGENTS.md if it has that, else a new CLAUDE.md."""
    if prefer is not None:
        if prefer not in RULE_FILES:
            raise RulesFileError(f"rules go to CLAUDE.md or AGENTS.md, not {prefer!r}")
        return project_dir / prefer
    for name in RULE_FILES:
        if (project_dir / name).is_file():
            return project_dir / name
    return project_dir / RULE_FILES[0]


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ""
    except (OSError, UnicodeDecodeError) as e:
        raise RulesFileError(f"{path}: cannot read ({e})") from None


def plan_append(path: Path, rule: Rule, *, entry_id: int | None = None, today: date | None = None) -> RulePlan:
    """The file's text with the rule added at the end of its "## Rules" section (created if missing)."""
    before = _read(path)
    body = rule.lines()
    if body[0] in before.splitlines():
        return RulePlan(path, before, before, "")
    stamp = f"  <!-- from agentdeck diagnose{f' #{entry_id}' if entry_id is not None else ''}, " \
            f"{(today or date.today()).isoformat()} -->"
    block = "\n".join(body + [stamp]) + "\n"
    heading = _RULES_HEADING.search(before)
    if heading is None:
        head = before.rstrip("\n") + "\n\n" if before.strip() else ""
        after = head + "## Rules\n\n" + block
    else:
        nxt = _NEXT_H2.search(before, heading.end())
        cut = nxt.start() if nxt is not None else len(before)
        section = before[:cut].rstrip("\n")
        rest = before[cut:]
        after = section + "\n" + block + ("\n" + rest if rest else "")
    diff = "".join(difflib.unified_diff(
        before.splitlines(keepends=True), after.splitlines(keepends=True),
        fromfile=f"a/{path.name}", tofile=f"b/{path.name}",
    ))
    return RulePlan(path, before, after, diff)


def apply(plan: RulePlan) -> None:
    """Write the planned text, atomically, only if the file still reads as it did when planned."""
    if not plan.changed:
        return
    if _read(plan.path) != plan.before:
        raise RulesFileError(f"{plan.path} changed since the diff was shown; preview the change again")
    plan.path.parent.mkdir(parents=True, exist_ok=True)
    mode = plan.path.stat().st_mode & 0o777 if plan.path.exists() else 0o644
    fd, tmp = tempfile.mkstemp(dir=plan.path.parent, prefix=f".{plan.path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(plan.after)
        os.chmod(tmp, mode)
        os.replace(tmp, plan.path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
