"""The classifier against a labelled set of realistic tasks, its traps, and its config rules."""

from __future__ import annotations

import random
import re
from collections import Counter
from pathlib import Path

import pytest
from routing_support import labelled_tasks, make_config

from agentdeck.config import TIERS
from agentdeck.errors import ConfigError
from agentdeck.routing import Decision, Rules, classify
from agentdeck.routing import classifier as C
from agentdeck.routing import rules as R

TASKS = labelled_tasks()


def test_labelled_set_is_large_and_covers_every_tier() -> None:
    assert len(TASKS) >= 60
    per_tier = Counter(t["tier"] for t in TASKS)
    assert set(per_tier) == set(TIERS) and min(per_tier.values()) >= 20
    assert len({t["text"] for t in TASKS}) == len(TASKS), "duplicate tasks"
    assert sum(1 for t in TASKS if t.get("trap")) >= 15


def test_agreement_with_the_decision_tree_is_at_least_90_percent() -> None:
    misses = [(t["text"], t["tier"], classify(t["text"])) for t in TASKS if classify(t["text"]).tier != t["tier"]]
    agreement = 1 - len(misses) / len(TASKS)
    assert agreement >= 0.90, f"{agreement:.1%} agreement; misses: {misses}"


@pytest.mark.parametrize("task", [t for t in TASKS if t.get("trap")], ids=lambda t: t["text"][:50])
def test_every_trap_is_read_as_a_person_would(task: dict[str, str]) -> None:
    d = classify(task["text"])
    assert d.tier == task["tier"], d


def test_payments_grep_is_a_search_and_says_why() -> None:
    d = classify("grep for TODOs in the payments module")
    assert d == Decision("fast", "search", d.reason)
    assert "grep" in d.reason and "payments" in d.reason
    # ... while changing the same module is security-sensitive work.
    assert classify("add retries to the payments module").tier == "smart"
    assert classify("grep for TODOs in the payments module and fix them").tier == "smart"


@pytest.mark.parametrize(("text", "rule"), [
    ("Fix the typo in the README", "typo"),
    ("find the config loader", "search"),
    ("Update api.py, models.py and views.py to add pagination", "multi-file:3"),
    ("Rename the Customer model to Account across 14 files", "multi-file:14"),
    ("Change the event schema in the orders, billing and shipping services", "multi-service:3"),
    ("Implement OAuth login", "auth"),
    ("Fix the SQL injection in the search endpoint", "security"),
    ("Migrate the user table to Postgres", "migration"),
    ("Optimize the dashboard query", "performance"),
    ("Write unit tests for the parser", "tests"),
    ("Fix the bug where totals are off", "bug-fix"),
    ("Hello there", "default"),
])
def test_rules_are_short_stable_ids(text: str, rule: str) -> None:
    assert classify(text).rule == rule


def test_every_reason_quotes_the_phrase_that_matched() -> None:
    for t in TASKS:
        d = classify(t["text"])
        quoted = re.findall(r"\u201c(.+?)\u201d", d.reason)
        if d.rule.startswith(("multi-file", "multi-service", "default")):
            continue
        assert quoted, d
        assert all(q in t["text"].lower() for q in quoted), (t["text"], d.reason)


def test_file_and_service_counting() -> None:
    assert C.count_files("update a.py and b/c.ts, see node.js docs") == 2
    assert C.count_files("across seven files") == 7
    assert C.count_services("the auth service and the billing service") == 2
    assert C.count_services("the orders, billing and shipping services") == 3
    assert classify("edit a.py and b.py").tier == "balanced"
    assert classify("edit " + ", ".join(f"m{i}.py" for i in range(6))).tier == "smart"


def test_a_large_context_is_never_a_fast_tier_job() -> None:
    small = classify("read the logs and summarize them", context_tokens=2_000)
    big = classify("read the logs and summarize them", context_tokens=120_000)
    assert small.tier == "fast"
    assert big.tier == "balanced" and big.rule == "large-context" and "120,000" in big.reason
    assert classify("Design a sharded queue", context_tokens=150_000).tier == "smart"
    rules = Rules(large_context_tokens=10_000)
    assert classify("read the logs", 10_000, rules).rule == "large-context"


def test_pasted_code_and_the_middle_of_long_messages_are_not_the_task() -> None:
    pasted = "Fix the typo in the greeting.\n```python\ndef login(password):\n    return check_auth(password)\n```"
    assert classify(pasted).tier == "fast"
    log = "grep the worker log for the request id\n" + "INFO payment processed for order 12, auth ok\n" * 400
    assert classify(log).tier == "fast"
    # The instruction after a long paste is read.
    tail = "ERROR worker crashed\n" * 400 + "Design a new retry architecture for this."
    assert classify(tail).tier == "smart"


def test_empty_text_is_the_default() -> None:
    assert classify("") == Decision("balanced", "default", "no task text: the balanced tier is the default")


def test_gates_never_hide_a_match() -> None:
    """A pattern's gate is a necessary condition: whenever its regex matches, the gate is open."""
    pats: list[C._Pat] = [p for v in vars(C).values() if isinstance(v, C._Pat) for p in [v]]
    for table in (C._COSMETIC, C._SMALL_EDIT, C._DOMAINS, C._SMART_LEAD, tuple(C._SMART.items())):
        pats += [p for _, p in table]
    assert len(pats) > 25
    rng = random.Random(7)
    vocab = re.findall(r"[a-z][a-z'+-]+|\d+", Path(R.__file__).read_text().lower())
    texts = [t["text"].lower() for t in TASKS]
    texts += [" ".join(rng.choice(vocab) for _ in range(rng.randint(3, 25))) for _ in range(400)]
    checked = 0
    for text in texts:
        idx = C.word_index(text)
        for p in pats:
            if p.rx.pattern.startswith(r"(?<![\w-])") and p.rx.search(text):  # word patterns are searched
                checked += 1
                assert p.search(text, idx) is not None, (p.rx.pattern[:80], text)
            if p.rx.match(text):  # lead patterns are matched at the start of a piece
                checked += 1
                assert p.match(text, idx) is not None
    assert checked > 500


# --- extra rules from config ---------------------------------------------------------------------
def test_config_rules_run_first_by_priority_and_honour_unless(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, rules=[
        {"name": "db-migrations", "tier": "smart", "any": ["alembic", "schema change"], "unless": ["grep"]},
        {"name": "changelog", "tier": "fast", "regex": [r"^update the changelog"], "priority": 5,
         "description": "release chores"},
        {"name": "ledger", "tier": "smart", "any": ["ledger/"], "priority": 10},
    ])
    rules = Rules.from_config(cfg.routing)
    assert [r.name for r in rules.extra] == ["ledger", "changelog", "db-migrations"]
    d = classify("add an alembic revision for the new index", 0, rules)
    assert (d.tier, d.rule) == ("smart", "db-migrations") and "alembic" in d.reason
    assert classify("grep for alembic revisions", 0, rules).rule == "search"  # vetoed by `unless`
    d = classify("Update the changelog and write tests", 0, rules)
    assert (d.tier, d.rule) == ("fast", "changelog") and "release chores" in d.reason
    assert classify("fix a typo in ledger/core.py", 0, rules).rule == "ledger"
    # Whole words only: "schema changes" matches, "alembics" would not.
    assert classify("plan the schema change", 0, rules).rule == "db-migrations"
    assert classify("read about alembics", 0, rules).rule != "db-migrations"


@pytest.mark.parametrize(("rule", "message"), [
    ({"tier": "smart", "any": ["x"]}, "routing.rules[0].name: required"),
    ({"name": "x", "tier": "opus", "any": ["x"]}, "routing.rules[0].tier: must be one of fast, balanced, smart"),
    ({"name": "x", "tier": "smart"}, "routing.rules[0].any: a rule needs"),
    ({"name": "x", "tier": "smart", "any": "x", "regex": ["(unclosed"]}, "routing.rules[0].regex[0]: invalid regular expression"),
    ({"name": "x", "tier": "smart", "any": [""]}, "routing.rules[0].any: must be a list of non-empty strings"),
    ({"name": "x", "tier": "smart", "any": ["x"], "priority": "high"}, "routing.rules[0].priority: must be an integer"),
    ({"name": "x", "tier": "smart", "any": ["x"], "when": "always"}, "routing.rules[0].when: unknown key"),
])
def test_bad_config_rules_give_one_clear_error(tmp_path: Path, rule: dict[str, object], message: str) -> None:
    cfg = make_config(tmp_path, rules=[rule])
    with pytest.raises(ConfigError) as e:
        Rules.from_config(cfg.routing, "cfg.toml")
    assert str(e.value).startswith("cfg.toml: ") and message in str(e.value)


def test_duplicate_rule_names_are_rejected(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, rules=[{"name": "a", "tier": "fast", "any": ["x"]}, {"name": "a", "tier": "smart", "any": ["y"]}])
    with pytest.raises(ConfigError, match=r"routing.rules\[1\].name: duplicate"):
        Rules.from_config(cfg.routing)


def test_literal_prefixes_of_pattern_fragments() -> None:
    assert C.literal_prefixes(r"optimi[sz]\w*(?! imports)") == {"optimi"}
    assert C.literal_prefixes(r"(?:add|write)\s+tests?") == {"add", "write"}
    assert C.literal_prefixes(r"cve(?:-[\d-]+)?") == {"cve"}
    assert C.literal_prefixes(r"re-?architect\w*") == {"re"}
    assert C.literal_prefixes(r"show(?: me)?|look at") == {"show", "look"}
    assert C.literal_prefixes(r"[a-z]+ing") is None
    assert C.literal_prefixes(r"(?:x|\d+)") is None
