"""Which tier a task needs, read the way a person would read it.

The seed's template is one list of regexes per tier with "smart wins". That sends
"grep for TODOs in the payments module" to the most expensive model because it says
*payments*. A person reads the verb first: that task is a lookup. So the classifier:

1. splits a message into sentences and, inside a sentence, into the pieces of work joined
   by "and"/"then" ("find the auth bypass and fix it" is a lookup *plus* a security fix);
2. reads each piece in the decision tree's order (lookups and cosmetic edits first, then
   the expensive kinds of work, then file counts, then ordinary development);
3. takes the hardest piece; a prompt whose context is large never stays on the fast tier.

Only the head and tail of a long message are scanned (the instruction is usually at the
start, a question after a pasted log at the end), and pasted code blocks are ignored: the
words inside someone's stack trace are material, not the task. Everything is compiled once
at import; a typical prompt classifies in tens of microseconds (see docs/routing.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable, Iterator, Mapping, Sequence

from agentdeck.config import TIERS, RoutingConfig
from agentdeck.routing import rules as R

_RANK = {t: i for i, t in enumerate(TIERS)}


@dataclass(frozen=True, slots=True)
class Decision:
    """A tier and the rule (short stable id) and reason (a sentence for people) that chose it."""

    tier: str
    rule: str
    reason: str


@dataclass(frozen=True, slots=True)
class Rules:
    """What the classifier needs beyond its built-in patterns: config rules and the large-context line."""

    extra: tuple[R.ConfigRule, ...] = ()
    large_context_tokens: int = 100_000
    scan_chars: int = R.DEFAULT_SCAN_CHARS

    @classmethod
    def from_config(cls, routing: RoutingConfig, source: str = "<config>") -> "Rules":
        """Compile `routing.rules`; raises ConfigError naming `routing.rules[i].field` on the first problem."""
        return cls(R.compile_config_rules(routing.rules, source), routing.large_context_tokens)


DEFAULT_RULES = Rules()


# --- compiled patterns ---------------------------------------------------------------------------
# Python's `re` tries every alternative at every position, so twenty patterns of twenty
# phrases each cost ~80 us per sentence. Each pattern therefore carries a gate: the first
# three letters of every literal word its alternatives can start with. A message is
# tokenized once; a pattern whose gate shares nothing with the message's word prefixes
# cannot match and is skipped. The gate is a necessary condition, so it changes no result
# (tests/routing/test_routing_classifier.py checks gated and ungated runs agree).
_WORD = re.compile(r"[a-z0-9]+")
_QUANT = frozenset("?*{")


def _structure(frag: str, i: int = 0) -> Iterator[tuple[int, str, int]]:
    """The grouping characters of a regex fragment from ``i`` on: (index, "(" / ")" / "|", depth
    after it), skipping escapes and character classes, where those characters are literal."""
    depth = 0
    while i < len(frag):
        c = frag[i]
        if c == "\\":
            i += 2
            continue
        if c == "[":
            i = frag.index("]", i + 2) + 1
            continue
        if c in "()|":
            depth += {"(": 1, ")": -1, "|": 0}[c]
            yield i, c, depth
        i += 1


def _split_alternatives(frag: str) -> list[str]:
    out, start = [], 0
    for i, c, depth in _structure(frag):
        if c == "|" and depth == 0:
            out.append(frag[start:i])
            start = i + 1
    out.append(frag[start:])
    return out


def _group_end(frag: str, i: int) -> int:
    """Index just past the group that opens at frag[i]."""
    for j, c, depth in _structure(frag, i):
        if c == ")" and depth == 0:
            return j + 1
    raise ValueError(f"unbalanced group in {frag!r}")


def literal_prefixes(frag: str) -> set[str] | None:
    """The literal letters/digits every match of `frag` must start with, per alternative; None if unknown."""
    out: set[str] = set()
    for alt in _split_alternatives(frag):
        prefix, i = "", 0
        while i < len(alt):
            c = alt[i]
            if alt.startswith(("(?<!", "(?<=", "(?!"), i):
                i = _group_end(alt, i)
                continue
            if alt.startswith("\\b", i) or (c == "^" and i == 0):
                i += 2 if c == "\\" else 1
                continue
            if c == "(":
                end = _group_end(alt, i)
                if prefix or end < len(alt) and alt[end] in _QUANT or alt.startswith("(?=", i):
                    break
                inner = alt[i + 1:end - 1]
                inner = inner[2:] if inner.startswith("?:") else inner
                subs = literal_prefixes(inner)
                if subs is None:
                    return None
                out |= subs
                prefix = None  # type: ignore[assignment]
                break
            if not (c.isascii() and c.isalnum()) or (i + 1 < len(alt) and alt[i + 1] in _QUANT):
                break
            prefix += c
            i += 1
        if prefix is None:
            continue
        if not prefix:
            return None
        out.add(prefix)
    return out


class _Pat:
    """A compiled pattern and its gate (word prefixes of up to three letters; None = always try)."""

    __slots__ = ("rx", "gate")

    def __init__(self, rx: str, frags: Sequence[str]) -> None:
        self.rx = re.compile(rx)
        keys: set[str] = set()
        for f in frags:
            p = literal_prefixes(f)
            if p is None:
                self.gate: frozenset[str] | None = None
                return
            keys |= {k[:3] for k in p}
        self.gate = frozenset(keys)

    def search(self, text: str, idx: frozenset[str] | set[str]) -> re.Match[str] | None:
        if self.gate is not None and self.gate.isdisjoint(idx):
            return None
        return self.rx.search(text)

    def match(self, text: str, idx: frozenset[str] | set[str]) -> re.Match[str] | None:
        if self.gate is not None and self.gate.isdisjoint(idx):
            return None
        return self.rx.match(text)


def _words(frags: Sequence[str]) -> _Pat:
    """One alternation, matched on whole words."""
    return _Pat(r"(?<![\w-])(?:" + "|".join(frags) + r")(?![\w])", frags)


def _lead(frag: str) -> _Pat:
    return _Pat(r"(?:" + frag + r")(?![\w])", [frag])


def _table(d: Mapping[str, Sequence[str]]) -> tuple[tuple[str, _Pat], ...]:
    return tuple((name, _words(frags)) for name, frags in d.items())


def word_index(text: str) -> set[str]:
    """The one-, two- and three-letter prefixes of the words in `text` (what the gates test)."""
    words = set(_WORD.findall(text))
    return {p for w in words for p in (w[:1], w[:2], w[:3])}


_FENCE = re.compile(r"```.*?(?:```|\Z)", re.S)
_FILLER = re.compile(r"^[\s\W]*(?:(?:" + R.LEAD_FILLER + r")(?![\w'])[\s,:!.]*)*")
_SEARCH_LEAD = _lead(R.SEARCH_LEAD)
_READ_LEAD = _lead(R.READ_LEAD)
_NOT_A_LOOKUP = _words([R.NOT_A_LOOKUP])
_COSMETIC = _table(R.COSMETIC)
_SMALL_EDIT = _table(R.SMALL_EDIT)
_TESTS_LEAD = _lead(R.TESTS_LEAD)
_TESTS_ANY = _words(R.TESTS_ANY)
_PROD = _words([R.PROD_WORDS])
_TROUBLE = _words([R.TROUBLE_WORDS])
_SMART = dict(_table(R.SMART))
_SMART_LEAD = tuple((name, _lead(frag)) for name, frag in R.SMART_LEAD.items())
_DOMAINS = _table(R.DOMAINS)
_BUG = _words(R.BUG_FIX)
_FEATURE = _words(R.FEATURE)
_REFACTOR = _words(R.REFACTOR)
_ACTION = _words([R.CHANGE_VERBS])
_DOMAIN_ACTION = _words([R.DOMAIN_ACTIONS])
# Starts with a character class so `re` can skip ahead fast (4x quicker than an alternation).
_SENTENCES = re.compile(r"[\n.!?;](?:(?<=\n)|(?=\s|$))[\s.!?;]*")
_PIECE_JOINS = (",", " and ", " then ", " plus ", "&", "\nand ", "\nthen ")
_PIECES = re.compile(
    r"(?:,\s*|\s+(?:and\s+then|and\s+also|and|then|plus|&&|&)\s+)(?=(?:then\s+|also\s+)?(?:" + R.CHANGE_VERBS + r")\b)"
)
_EXTENSIONS = frozenset(R.FILE_EXTENSIONS.replace("ya?ml", "yaml|yml").split("|"))
_TOKEN_EDGES = "\"'`()[]{}<>,:;!?*"
_FILE_NAME = re.compile(r"(?:[\w.-]+/)*[\w-]+\.[a-z0-9]+")
_NUM = r"\d+|" + "|".join(sorted((re.escape(w) for w in R.NUMBER_WORDS), key=len, reverse=True))
_FILE_UNIT_STEMS = tuple({u[:5] for u in R.FILE_UNITS.split("|")})
_SERVICE_UNIT_STEMS = ("servic", "repo", "app", "system")
_FILE_UNIT_GATE = frozenset(u[:3] for u in _FILE_UNIT_STEMS)
_SERVICE_UNIT_GATE = frozenset(u[:3] for u in _SERVICE_UNIT_STEMS) | {"mic"}
MAX_SENTENCES = 8
_FILE_COUNT = re.compile(r"(?<![\w-])(" + _NUM + r")\s+(?:[\w-]+\s+){0,2}?(?:" + R.FILE_UNITS + r")(?![\w])")
_SERVICE_COUNT = re.compile(r"(?<![\w-])(" + _NUM + r")\s+(?:[\w-]+\s+){0,2}?(?:" + R.SERVICE_UNITS + r")(?![\w])")
_SERVICE_UNIT = re.compile(r"\s(?:" + R.SERVICE_UNITS + r")(?![\w])")
_SERVICE_LIST = re.compile(r"((?:[\w-]+\s*,\s*)+[\w-]+,?\s+and\s+(?:the\s+)?[\w-]+)$")
_NAMED_SERVICE = re.compile(r"(?<![\w-])([\w-]+)[ -](?:service|microservice)(?![\w])")
_NOT_SERVICE_NAMES = frozenset({"the", "a", "an", "this", "that", "each", "every", "one", "our", "new", "web", "same", "other", "customer"})


def _number(word: str) -> int:
    return int(word) if word.isdigit() else R.NUMBER_WORDS.get(word, 0)


def _prepare(text: str, cap: int) -> str:
    if len(text) > cap:
        half = cap // 2
        text = text[:half] + "\n" + text[-half:]
    if "```" in text:
        text = _FENCE.sub(" ", text)
    return text.lower()


def count_files(text: str, idx: set[str] | None = None) -> int:
    """Distinct file names a task names, or the number it states ("across 7 files")."""
    named = set()
    if "." in text:
        for tok in text.split():
            if "." not in tok:
                continue
            tok = tok.strip(_TOKEN_EDGES).rstrip(".")
            if _FILE_NAME.fullmatch(tok) and tok.rsplit(".", 1)[1] in _EXTENSIONS and tok not in R.NOT_FILES:
                named.add(tok)
    stated = 0
    if (not _FILE_UNIT_GATE.isdisjoint(idx)) if idx is not None else any(u in text for u in _FILE_UNIT_STEMS):
        stated = max((_number(m.group(1)) for m in _FILE_COUNT.finditer(text)), default=0)
    return max(len(named), stated)


def count_services(text: str, idx: set[str] | None = None) -> int:
    """Services a task names ("the auth, billing and search services", "2 services")."""
    if _SERVICE_UNIT_GATE.isdisjoint(idx) if idx is not None else not any(u in text for u in _SERVICE_UNIT_STEMS):
        return 0
    stated = max((_number(m.group(1)) for m in _SERVICE_COUNT.finditer(text)), default=0)
    listed = 0
    if " and " in text:
        for unit in _SERVICE_UNIT.finditer(text):
            m = _SERVICE_LIST.search(text, max(0, unit.start() - 160), unit.start())
            if m:
                listed = max(listed, len(re.split(r"\s*,\s*|\s+and\s+", m.group(1))))
    named = {m.group(1) for m in _NAMED_SERVICE.finditer(text)} - _NOT_SERVICE_NAMES
    return max(stated, listed, len(named) if len(named) >= 2 else 0)


def _sentences(text: str) -> list[str]:
    """The sentences worth reading. Of a long message only the first and last few: the
    instruction is at the start, or at the end after a pasted log; the middle is material."""
    sentences = [x for x in (s.strip() for s in _SENTENCES.split(text)) if x]
    if len(sentences) > MAX_SENTENCES:
        half = MAX_SENTENCES // 2
        sentences = sentences[:half] + sentences[-half:]
    return sentences


def _split(sentences: list[str]) -> list[tuple[str, str]]:
    """(piece, its sentence): the pieces of work inside each sentence, joined by and/then."""
    out: list[tuple[str, str]] = []
    for sentence in sentences:
        pieces = _PIECES.split(sentence) if any(j in sentence for j in _PIECE_JOINS) else (sentence,)
        for piece in pieces:
            piece = piece.strip(" ,")
            if piece:
                out.append((piece, sentence))
    return out


def _q(m: re.Match[str]) -> str:
    return f"\u201c{m.group(0).strip()}\u201d"


def _classify_piece(piece: str, sentence: str, files: int, services: int, idx: set[str]) -> Decision | None:
    """One piece of work through the decision tree; None when it asks for nothing recognisable."""
    head = piece[_FILLER.match(piece).end():]  # type: ignore[union-attr]

    # 1. Lookups: reading and finding are fast whatever they mention, unless they ask why.
    for rule, lead in (("search", _SEARCH_LEAD), ("read", _READ_LEAD)):
        m = lead.match(head, idx)
        if m and not _NOT_A_LOOKUP.search(piece, idx):
            seen = next((hit for _, d in _DOMAINS if (hit := d.search(piece, idx))), None) or _SMART["migration"].search(piece, idx)
            aside = f" ({_q(seen)} is mentioned, but only looked at)" if seen else ""
            return Decision("fast", rule, f"starts with {_q(m)} and changes nothing{aside}: reading and finding go to the fast tier")

    # 2. Cosmetic edits: comments, typos, docs, formatting, log lines.
    for rule, pat in _COSMETIC:
        m = pat.search(piece, idx)
        if m:
            return Decision("fast", rule, f"{_q(m)} is a cosmetic edit: fast tier")

    # 3. Writing tests is the seed's Sonnet work, whatever code is under test.
    m = _TESTS_LEAD.match(head, idx) or _TESTS_ANY.search(piece, idx)
    if m:
        return Decision("balanced", "tests", f"{_q(m)}: writing tests goes to the balanced tier")

    # 4. Production trouble, the hard kinds of bug, system-wide change.
    m = _SMART["production-debugging"].search(piece, idx)
    if m:
        return Decision("smart", "production-debugging", f"{_q(m)}: production debugging goes to the smart tier")
    p = _PROD.search(sentence, idx)
    t = _TROUBLE.search(sentence, idx) if p else None
    if p and t:
        return Decision("smart", "production-debugging", f"{_q(p)} with {_q(t)}: production debugging goes to the smart tier")
    m = _SMART["hard-bug"].search(piece, idx)
    if m:
        return Decision("smart", "hard-bug", f"{_q(m)} is a hard bug to find: smart tier")
    m = _SMART["large-refactor"].search(piece, idx)
    if m:
        return Decision("smart", "large-refactor", f"{_q(m)} is a system-wide change: smart tier")

    # 5. Size: several services, or six or more files.
    action = _ACTION.search(piece, idx) or _BUG.search(piece, idx) or _FEATURE.search(piece, idx) or _REFACTOR.search(piece, idx)
    if action is not None:
        if services >= 2:
            return Decision("smart", f"multi-service:{services}", f"touches {services} services: smart tier")
        if files >= 6:
            return Decision("smart", f"multi-file:{files}", f"touches {files} files (6+): smart tier")

    # 6. Small edits that stay in one file (a rename, an import, a constant).
    migration = _SMART["migration"].search(piece, idx)
    if files <= 1 and migration is None:
        for rule, pat in _SMALL_EDIT:
            m = pat.search(piece, idx)
            if m:
                return Decision("fast", rule, f"{_q(m)} is a small single-file edit: fast tier")

    # 7. Design, migrations, performance.
    for _, lead in _SMART_LEAD:
        m = lead.match(head, idx)
        if m:
            return Decision("smart", "design", f"starts with {_q(m)}: design and planning go to the smart tier")
    if migration is not None:
        return Decision("smart", "migration", f"{_q(migration)}: migrations go to the smart tier")
    for rule in ("architecture", "performance"):
        m = _SMART[rule].search(piece, idx)
        if m:
            return Decision("smart", rule, f"{_q(m)}: {rule} work goes to the smart tier")

    # 8. Changes to security-sensitive code: auth, payments, crypto, secrets.
    if action is None and _DOMAIN_ACTION.search(piece, idx) is None:
        return None
    for rule, pat in _DOMAINS:
        m = pat.search(piece, idx) or (pat.search(sentence, idx) if sentence is not piece else None)
        if m:
            return Decision("smart", rule, f"changes {rule}-sensitive code ({_q(m)}): smart tier")
    if action is None:
        return None

    # 9. Two to five files.
    if files >= 2:
        return Decision("balanced", f"multi-file:{files}", f"touches {files} files (2-5): balanced tier")

    bug = _BUG.search(piece, idx)
    refactor = _REFACTOR.search(piece, idx)
    work = refactor or _FEATURE.search(piece, idx)
    # 10. The decision tree's "implement feature / refactor function, affects 1 file -> Haiku".
    if files == 1 and work is not None and bug is None:
        return Decision("fast", "single-file", f"{_q(work)} confined to one named file: fast tier")

    # 11. Ordinary development.
    if bug is not None:
        return Decision("balanced", "bug-fix", f"{_q(bug)}: a bug fix with context goes to the balanced tier")
    if refactor is not None:
        return Decision("balanced", "refactor", f"{_q(refactor)}: refactoring goes to the balanced tier")
    if work is not None:
        return Decision("balanced", "feature", f"{_q(work)}: feature work goes to the balanced tier")
    return Decision("balanced", "default", "ordinary development work: balanced tier")


def _config_rule(text: str, rules: Rules) -> Decision | None:
    for rule in rules.extra:
        m = rule.pattern.search(text)
        if m and not (rule.unless and rule.unless.search(text)):
            why = f" ({rule.description})" if rule.description else ""
            return Decision(rule.tier, rule.name, f"config rule {rule.name!r} matched {_q(m)}{why}: {rule.tier} tier")
    return None


def _decide(t: str, rules: Rules) -> Decision:
    """The decision for prepared text, before the context-size floor."""
    decision = _config_rule(t, rules) if rules.extra else None
    if decision is None:
        sentences = _sentences(t)
        scope = "\n".join(sentences)
        idx = word_index(scope)
        files = count_files(scope, idx)
        services = count_services(scope, idx)
        last_sentence = sentences[0] if len(sentences) == 1 else None
        for piece, sentence in _split(sentences):
            if sentence is not last_sentence:
                idx, last_sentence = word_index(sentence), sentence
            d = _classify_piece(piece, sentence, files, services, idx)
            if d is not None and (decision is None or _RANK[d.tier] > _RANK[decision.tier]):
                decision = d
                if d.tier == "smart":
                    break
    if decision is None:
        decision = Decision("balanced", "default", "no rule matched: the balanced tier is the default" if t.strip() else "no task text: the balanced tier is the default")
    return decision


# An agent sends the same task text with every request of a turn (tool calls in between),
# so decisions are cached by text: a repeat costs a dict lookup.
_decide_cached = lru_cache(maxsize=4096)(_decide)


def classify(text: str, context_tokens: int = 0, rules: Rules | None = None, *, cache: bool = True) -> Decision:
    """The tier a task needs, with the rule and the phrase that decided it. No I/O."""
    rules = DEFAULT_RULES if rules is None else rules
    t = _prepare(text, rules.scan_chars)
    decision = _decide_cached(t, rules) if cache else _decide(t, rules)
    if context_tokens >= rules.large_context_tokens and decision.tier == "fast":
        decision = Decision(
            "balanced", "large-context",
            f"{decision.reason}; but the prompt is ~{context_tokens:,} tokens (>= {rules.large_context_tokens:,}), "
            "too large a context for the fast tier: balanced",
        )
    return decision
