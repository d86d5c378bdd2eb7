"""`agentdeck diagnose`: the five-point error-diagnosis wizard and its scriptable subcommands.

    agentdeck diagnose [--error TEXT] [--project DIR] [--second-opinion]   the wizard (rich prompts)
    agentdeck diagnose suggest [--json] [--second-opinion] TEXT            category, confidence, why
    agentdeck diagnose log --error T --category C --fix T [...]            record an entry
    agentdeck diagnose list [--json] / show ID / export [--format md|json]
    agentdeck diagnose result ID stuck|recurred|pending [--note T]         did the fix stick?
    agentdeck diagnose stats [--json] [--period day|week|month]            the figures
    agentdeck diagnose rule --rule T [--example T] [--do-not T] [--yes]    append a rule to CLAUDE.md
    agentdeck diagnose framework [--json]                                  the categories, questions, fixes
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from agentdeck.errors import AgentdeckError

NAME = "diagnose"


class _SubParser(argparse.ArgumentParser):
    """Bad flags as one line, like the top-level parser."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _config_parent() -> argparse.ArgumentParser:
    # SUPPRESS: a nested parser must not reset a --config given earlier on the line to None.
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--config", metavar="P", default=argparse.SUPPRESS,
                   help="config file (default: $AGENTDECK_CONFIG or ~/.config/agentdeck/config.toml)")
    return p


def _gateway_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--second-opinion", action="store_true",
                   help="also ask the gateway's fast tier (one small, time-limited call; off by default)")
    p.add_argument("--url", metavar="U", help="gateway for the second opinion (default: the configured one)")
    p.add_argument("--key", metavar="NAME", help="gateway key name from [[keys]] (default: $AGENTDECK_KEY or the first key)")


def register(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    # Not the shared `parents`: their --config defaults to None, which would reset a --config given
    # before the command name (`agentdeck --config P diagnose ...`); ours is SUPPRESSed instead.
    cfg_parent = [_config_parent()]
    p = subparsers.add_parser(
        NAME, parents=cfg_parent, help="diagnose an LLM coding error with the five-point framework",
        description="Diagnose an LLM coding error (context, model, rules, testing, quality gate) and log the fix.",
    )
    p.add_argument("--error", metavar="TEXT", help="start the wizard with this description (prefilled)")
    p.add_argument("--project", metavar="DIR", default=".", help="project whose CLAUDE.md / AGENTS.md gets new rules")
    _gateway_flags(p)
    p.set_defaults(func=run, diagnose_command=None)
    sub = p.add_subparsers(dest="diagnose_command", metavar="SUBCOMMAND", parser_class=_SubParser)

    s = sub.add_parser("suggest", parents=cfg_parent, help="suggest the root-cause category for an error")
    s.add_argument("--json", action="store_true", help='print {"category", "confidence", "why"}')
    _gateway_flags(s)
    s.add_argument("text", nargs="+", metavar="TEXT", help="the error, in words ('-' reads standard input)")

    lg = sub.add_parser("log", parents=cfg_parent, help="record a diagnosis without the wizard")
    lg.add_argument("--error", required=True, metavar="TEXT", help="what happened")
    lg.add_argument("--category", required=True, metavar="C", help="context | model | rules | testing | quality_gate")
    lg.add_argument("--fix", required=True, metavar="TEXT", help="the fix applied")
    lg.add_argument("--verification", default="", metavar="TEXT", help="how it was (or will be) confirmed")
    lg.add_argument("--result", default="", metavar="TEXT",
                    help="did it stick? text starting with ✓/stuck marks it stuck, ✗/recurred marks it recurred")
    lg.add_argument("--root-cause", default="", metavar="TEXT", help="the specific cause in words")
    lg.add_argument("--also", action="append", default=[], metavar="C", help="another root cause (repeatable)")
    lg.add_argument("--seconds", type=float, default=None, metavar="S", help="time it took to diagnose")
    lg.add_argument("--json", action="store_true", help="print the saved entry as JSON")

    ls = sub.add_parser("list", parents=cfg_parent, help="list logged diagnoses, newest first")
    ls.add_argument("--json", action="store_true", help='print {"entries": [...]}')
    ls.add_argument("--category", metavar="C", help="only this category")
    ls.add_argument("--limit", type=int, default=None, metavar="N", help="at most N entries")

    sh = sub.add_parser("show", parents=cfg_parent, help="one entry in full")
    sh.add_argument("id", type=int, metavar="ID")
    sh.add_argument("--json", action="store_true")

    ex = sub.add_parser("export", parents=cfg_parent, help="the whole log as Markdown (Date, Error, Root Cause, Fix Applied, Verification, Result) or JSON")
    ex.add_argument("--format", choices=("md", "json"), default="md")
    ex.add_argument("--output", "-o", metavar="P", help="write to this file instead of standard output")

    rs = sub.add_parser("result", parents=cfg_parent, help="record whether a fix stuck or the error recurred")
    rs.add_argument("id", type=int, metavar="ID")
    rs.add_argument("outcome", choices=("stuck", "recurred", "pending"))
    rs.add_argument("--note", metavar="TEXT", help="the result in words (replaces the result text)")

    st = sub.add_parser("stats", parents=cfg_parent, help="errors by category over time, recurrence rate, time to diagnose")
    st.add_argument("--json", action="store_true")
    st.add_argument("--period", choices=("day", "week", "month"), default="week")

    ru = sub.add_parser("rule", parents=cfg_parent, help="append a rule (example, DO NOT line) to CLAUDE.md / AGENTS.md")
    ru.add_argument("--rule", required=True, metavar="TEXT", help="what the agent must do")
    ru.add_argument("--example", default="", metavar="TEXT", help="one correct example")
    ru.add_argument("--do-not", default="", metavar="TEXT", help="the anti-pattern to avoid")
    ru.add_argument("--project", default=".", metavar="DIR", help="project directory (default: .)")
    ru.add_argument("--file", choices=("CLAUDE.md", "AGENTS.md"), help="target file (default: the one that exists)")
    ru.add_argument("--entry", type=int, metavar="ID", help="the diagnosis this rule comes from (noted in the file)")
    ru.add_argument("--yes", action="store_true", help="write without asking (the diff is still printed)")

    fw = sub.add_parser("framework", parents=cfg_parent, help="print the five categories, their questions and fixes")
    fw.add_argument("--json", action="store_true")


# -- helpers ---------------------------------------------------------------------------------------
@contextmanager
def _conn(args: argparse.Namespace) -> Iterator[sqlite3.Connection]:
    """The agentdeck database (migrated), closed when the command is done."""
    from agentdeck.cli.common import config_from
    from agentdeck.store import connect, db_path

    cfg = config_from(args)
    try:
        conn = connect(db_path(cfg.gateway.data_dir))
    except sqlite3.Error as e:
        raise AgentdeckError(f"cannot open the database in {cfg.gateway.data_dir}: {e}") from None
    try:
        yield conn
    finally:
        conn.close()


def _second_opinion_fn(args: argparse.Namespace) -> Any:
    """A callable error -> SecondOpinion | None, or None when not asked for or no key is available."""
    if not getattr(args, "second_opinion", False):
        return None
    from agentdeck.cli.common import config_from, gateway_target
    from agentdeck.diagnose.second_opinion import ask_gateway

    cfg = config_from(args)
    url = gateway_target(cfg, args.url)[0]
    key = None
    if args.key:
        match = [k for k in cfg.keys if k.name == args.key]
        if not match:
            raise AgentdeckError(f"no key named {args.key!r} in [[keys]] of {cfg.source}")
        key = match[0].key
    key = key or os.environ.get("AGENTDECK_KEY") or (cfg.keys[0].key if cfg.keys else None)
    if not key:
        print("agentdeck: note: no gateway key for a second opinion (use --key NAME or $AGENTDECK_KEY)", file=sys.stderr)
        return None
    return lambda error: ask_gateway(url, key, error)


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")


def _console() -> Any:
    from rich.console import Console

    return Console(highlight=False, soft_wrap=not sys.stdout.isatty())


# -- subcommands -----------------------------------------------------------------------------------
def _suggest(args: argparse.Namespace) -> int:
    from agentdeck.diagnose.suggest import suggest
    from agentdeck.diagnose.terminal import render_suggestion

    text = " ".join(args.text)
    if text.strip() == "-":
        text = sys.stdin.read()
    if not text.strip():
        raise AgentdeckError("the error text is empty; describe what the agent got wrong")
    sug = suggest(text)
    ask = _second_opinion_fn(args)
    second = ask(text) if ask is not None else None
    if args.json:
        out = sug.to_json()
        if args.second_opinion:
            out["second_opinion"] = second.to_json() if second is not None else None
        _print_json(out)
    else:
        render_suggestion(_console(), sug, second)
    return 0


def _log(args: argparse.Namespace) -> int:
    from agentdeck.diagnose import log as dlog

    with _conn(args) as conn:
        e = dlog.record(
            conn, error=args.error, category=args.category, fix=args.fix, verification=args.verification,
            result=args.result, root_cause=args.root_cause, also=args.also, diagnose_seconds=args.seconds,
        )
    if args.json:
        _print_json(e.to_json())
        return 0
    print(f"logged #{e.id}: {e.root_cause_label}")
    if e.recurrence_of is not None:
        print(f"recurrence of #{e.recurrence_of}: that fix is now marked as recurred")
    return 0


def _list(args: argparse.Namespace) -> int:
    from rich.markup import escape
    from rich.table import Table

    from agentdeck.diagnose import log as dlog
    from agentdeck.diagnose.framework import CATEGORIES

    with _conn(args) as conn:
        items = dlog.entries(conn, category=args.category, limit=args.limit, newest_first=True)
    if args.json:
        _print_json({"entries": [e.to_json() for e in items]})
        return 0
    if not items:
        print("no diagnoses logged yet; run `agentdeck diagnose` or `agentdeck diagnose log`")
        return 0
    t = Table("#", "date", "category", "error", "fix", "result", box=None, pad_edge=False)
    for e in items:
        t.add_row(str(e.id), e.date, CATEGORIES[e.category].title, escape(e.error), escape(e.fix), escape(e.result_label))
    _console().print(t)
    return 0


def _show(args: argparse.Namespace) -> int:
    from agentdeck.diagnose import log as dlog

    with _conn(args) as conn:
        e = dlog.get(conn, args.id)
    if args.json:
        _print_json(e.to_json())
        return 0
    sys.stdout.write(dlog.export_markdown([e]).split("## Entries\n", 1)[-1].lstrip("\n"))
    if e.diagnose_seconds is not None:
        print(f"**Time to diagnose**: {e.diagnose_seconds:.0f} s")
    return 0


def _export(args: argparse.Namespace) -> int:
    from agentdeck.diagnose import log as dlog

    with _conn(args) as conn:
        items = dlog.entries(conn)
        figures = dlog.stats(conn)
    if args.format == "json":
        text = json.dumps(dlog.export_json(items, figures), ensure_ascii=False, indent=2) + "\n"
    else:
        text = dlog.export_markdown(items, figures)
    if args.output:
        try:
            Path(args.output).write_text(text, encoding="utf-8")
        except OSError as e:
            raise AgentdeckError(f"cannot write {args.output}: {e.strerror}") from None
        print(f"wrote {len(items)} entries to {args.output}")
    else:
        sys.stdout.write(text)
    return 0


def _result(args: argparse.Namespace) -> int:
    from agentdeck.diagnose import log as dlog

    with _conn(args) as conn:
        e = dlog.set_outcome(conn, args.id, args.outcome, args.note)
    print(f"#{e.id}: {e.result_label}")
    return 0


def _stats(args: argparse.Namespace) -> int:
    from rich.table import Table

    from agentdeck.diagnose import log as dlog
    from agentdeck.diagnose.framework import CATEGORIES, CATEGORY_KEYS

    with _conn(args) as conn:
        s = dlog.stats(conn, args.period)
    if args.json:
        _print_json(s)
        return 0
    c = _console()
    c.print(f"[bold]{s['total']}[/] diagnoses")
    if not s["total"]:
        return 0
    t = Table(args.period, *(CATEGORIES[k].title for k in CATEGORY_KEYS), box=None)
    for bucket, counts in s["over_time"].items():
        t.add_row(bucket, *(str(counts[k]) for k in CATEGORY_KEYS))
    t.add_row("[bold]total[/]", *(f"[bold]{s['by_category'][k]}[/]" for k in CATEGORY_KEYS))
    c.print(t)
    o = s["outcomes"]
    rate = "n/a" if s["recurrence_rate"] is None else f"{s['recurrence_rate']:.0%}"
    c.print(f"recurrence rate: [bold]{rate}[/] ({o['recurred']} recurred, {o['stuck']} stuck, {o['pending']} pending)")
    ttd = s["time_to_diagnose"]
    if ttd["count"]:
        c.print(f"time to diagnose: median [bold]{ttd['median_s']} s[/], mean {ttd['mean_s']} s ({ttd['count']} timed)")
    if s["suggester_agreement"] is not None:
        c.print(f"suggestion matched the final root cause in {s['suggester_agreement']:.0%} of wizard runs")
    return 0


def _rule(args: argparse.Namespace) -> int:
    from agentdeck.diagnose import rules_file

    project = Path(args.project)
    if not project.is_dir():
        raise AgentdeckError(f"{project}: not a directory")
    target = rules_file.choose_file(project, args.file)
    plan = rules_file.plan_append(target, rules_file.Rule(args.rule, args.example, args.do_not), entry_id=args.entry)
    if not plan.changed:
        print(f"{target} already has this rule; nothing to do")
        return 0
    sys.stdout.write(plan.diff)
    if not args.yes:
        if not sys.stdin.isatty():
            print("not written (no terminal to confirm; pass --yes to write)", file=sys.stderr)
            return 1
        from rich.prompt import Confirm

        if not Confirm.ask(f"Write this change to {target}?", default=True):
            print("not written")
            return 1
    rules_file.apply(plan)
    print(f"appended the rule to {target}")
    return 0


def _framework(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from agentdeck.diagnose.framework import CATEGORIES

    if args.json:
        _print_json({"categories": [asdict(c) for c in CATEGORIES.values()]})
        return 0
    from rich.markup import escape

    c = _console()
    for cat in CATEGORIES.values():
        c.print(f"\n[bold]{cat.title}[/] ({cat.key}): {escape(cat.symptom)}")
        c.print(f"  [dim]example: {escape(cat.example)}[/]")
        for q in cat.questions:
            c.print(f"  ? {escape(q.text)}  [dim]({'yes' if q.confirm_on else 'no'} confirms; "
                    f"otherwise {q.otherwise})[/]")
        for fx in cat.fixes:
            c.print(f"  → [bold]{escape(fx.title)}[/]: {escape(fx.detail)}")
    return 0


def _wizard(args: argparse.Namespace) -> int:
    from agentdeck.diagnose.terminal import TerminalWizard

    project = Path(args.project)
    if not project.is_dir():
        raise AgentdeckError(f"{project}: not a directory")
    ask = _second_opinion_fn(args)
    with _conn(args) as conn:
        TerminalWizard(conn, console=_console(), project_dir=project, second_opinion=ask).run(args.error or "")
    return 0


_COMMANDS = {
    "suggest": _suggest, "log": _log, "list": _list, "show": _show, "export": _export,
    "result": _result, "stats": _stats, "rule": _rule, "framework": _framework,
}


def run(args: argparse.Namespace) -> int:
    return _COMMANDS.get(args.diagnose_command, _wizard)(args)
