"""Offline, instant category suggestion from the words of an error.

Why phrase rules and not a model: the suggestion must appear while the engineer is still typing,
work with no network and no keys, and be explainable. Each rule is a precompiled pattern with a
weight and the reason it points at a category; the suggestion lists the phrases that drove it, so
the engineer can disagree with a reason instead of with a black box. The wizard's questions then
confirm the category or point to another one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from agentdeck.diagnose.framework import CATEGORIES, CATEGORY_KEYS, CategoryKey

#: When nothing in the text points anywhere, start with context: it is the cheapest cause to check
#: (was the example, version or convention in front of the model?) and the questions move on from it.
DEFAULT_CATEGORY: CategoryKey = "context"


@dataclass(frozen=True)
class Signal:
    category: CategoryKey
    pattern: re.Pattern[str]
    weight: float
    reason: str


@dataclass(frozen=True)
class Suggestion:
    category: CategoryKey
    confidence: float
    why: list[str]
    scores: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The contract's shape: category, confidence, why."""
        return {"category": self.category, "confidence": self.confidence, "why": list(self.why)}


def _sig(category: CategoryKey, pattern: str, weight: float, reason: str) -> Signal:
    # Patterns are lower case and run on lower-cased text: re.IGNORECASE is about twice as slow.
    return Signal(category, re.compile(pattern), weight, reason)


_PROJECT = r"(?:our|the project'?s?|the existing|the team'?s|the codebase'?s?|the repo'?s?|this project'?s?)"

# Order does not matter; every signal that matches adds its weight once. Patterns are lower case.
_CONTEXT: tuple[Signal, ...] = (
    _sig("context", r"\b(?:api|sdk|library|package|framework|language|schema)\s+version\b|\bversion\s+\d|\bv\d+(?:\.\d+)*\b(?=.*\b(?:api|sdk|endpoint|client)\b)|\b\d+\.x\b|\b\d+\.\d+ style\b|\bpython 2\b|\b(?:we |since we )?(?:upgraded|migrated|moved|switched) (?:to|from)\b",
         2.5, "names an API or library version: the pinned version was not in the model's context"),
    _sig("context", r"\b(?:deprecated|outdated|legacy|old(?:er)?|obsolete)\s+(?:\w+\s+){0,2}(?:api|sdk|method|call|syntax|version|endpoint|library|package|style|statement)s?\b|\bdeprecated\b|\bold[- ]style\b",
         2.0, "uses something outdated: the model fell back on training data instead of the project's current stack"),
    _sig("context", r"\binstead of " + _PROJECT + r"\b|\b(?:all|most) (?:of )?our\b|\bwe(?:'re| are) on\b|\bwe (?:use|write|always use|standardi[sz]ed on|settled on|rely on)\b|\bthe (?:project|rest of the (?:app|code(?:base)?|project)|codebase|app|repo|frontend|backend|service) (?:uses?|manages?|is built on|relies on)\b|\bevery other \w+\b|\beverywhere else\b",
         2.5, "contrasts with what this project already uses: the agent did not see the project's pattern"),
    _sig("context", r"\b(?:does ?n[o']t|did ?n[o']t|never|could ?n[o']t) (?:know|use|follow|see|find|read)\s+(?:about\s+|that\s+)?(?:we|" + _PROJECT[3:-1] + r")|\bunaware\b|\bnot (?:in|from) (?:the|its) context\b|\bwithout (?:the )?context\b|\bnever (?:saw|read|opened)\b",
         2.5, "the agent did not know or use the project's own code"),
    _sig("context", r"\b(?:invent(?:ed|s)?|hallucinat\w*|made[- ]up|imaginary|non-?existent|fictional)\b|\b(?:does ?n[o']t|did ?n[o']t|does not|did not) exist\b|\bwrong import path\b",
         2.5, "invented an API or helper: the real one was not in context"),
    _sig("context", r"\b(?:re-?implement\w*|duplicat\w*|wrote (?:its|a|their) own|rolled (?:its|a) own|reinvent\w*)\b|\balready (?:does|has|exists|provides|implements|handles|have)\b|\bexisting (?:helper|function|module|util\w*|service|component)\b",
         2.0, "rebuilt something that already exists: the existing implementation was not referenced"),
    _sig("context", r"\bgeneric\b|\bboilerplate\b|\btextbook\b|\bstack ?overflow\b|\btutorial\b",
         1.5, "generic code rather than project-specific code is the classic context symptom"),
    _sig("context", r"\b(?:project|codebase|house|our|shared) (?:pattern|convention|style|helper|wrapper|client|session|logger|envelope|utils?|library|component|service)s?\b|\b(?:wrapper|helper|envelope)\b",
         1.0, "mentions a project-specific helper or pattern the model should have reused"),
    _sig("context", r"\b(?:although|even though|but|while|when|whereas) (?:the project|we|our \w+|the (?:rest of the )?(?:app|codebase|repo)|the app|everything else) (?:uses?|has|have|writes?|relies on|manages?|is)\b|\b(?:do|does) ?n[o']t follow our\b",
         1.5, "the project does it another way the agent was not shown"),
)
_MODEL: tuple[Signal, ...] = (
    _sig("model", r"\b(?:complex|complicated|intricate|sophisticated)\b|\btoo (?:big|large|much|hard|difficult)\b|\b(?:the )?(?:whole|entire) (?:\w+ )?(?:module|codebase|system|service|layer|app|application|subsystem|pipeline)\b",
         2.0, "the task is complex or large for the model"),
    _sig("model", r"\bacross \d+ (?:files|modules|services)\b|\bin one (?:go|prompt|shot)\b|\ball at once\b|\bat once\b|\bmulti-?(?:part|step|file|service)\b|\b(?:oauth|saml|jwt)\b.*\b(?:oauth|saml|jwt)\b|\bport(?:ed|ing)? (?:the |a |our )?(?:\w+ )*?(?:to|into) \w+",
         2.0, "a large, multi-part task: a candidate for a stronger tier or splitting"),
    _sig("model", r"\bhalf[- ]?(?:done|finished|way|working|baked)\b|\b(?:only )?(?:partly|partially)\b|\bincomplete\b|\bunfinished\b|\bplaceholders?\b|\bstub(?:bed|s)?\b|\btruncat\w*\b|\bcut off\b|\bgave up\b|\bleft (?:out|undone)\b|\b(?:are|is|were) missing\b",
         2.5, "an incomplete solution: the model ran out of capability or room"),
    _sig("model", r"\blost track\b|\bin circles\b|\bback and forth\b|\b(?:no|without (?:making )?(?:any )?)progress\b|\bnever converg\w*\b|\b(?:kept|keeps) (?:repeating|looping|rewriting|undoing)\b|\brepeating (?:steps|itself)\b|\bincoherent\b|\bconfused\b|\bshallow\b|\bgarbage\b|\bnonsense\b|\bgibberish\b",
         2.5, "lost the thread of a long task: a sign of model capability, not missing information"),
    _sig("model", r"\b(?:algorithm\w*|recurrence|recursi\w+|concurrency|race|deadlock|reasoning|architecture design|designing|sharding|distributed|generics|type inference|state machine|math\w*|proof)\b",
         1.5, "hard reasoning (algorithms, concurrency, design) is where smaller tiers fail"),
    _sig("model", r"\b(?:haiku|sonnet|opus|small(?:er)? model|fast tier|cheap(?:er)? model|weak(?:er)? model|mini model|gpt-[\w.-]+)\b|\bcould ?n[o']t (?:follow|handle|manage|figure|cope)\b|\bbeyond (?:it|the model)\b",
         2.0, "names the model or its limits: try a stronger tier"),
    _sig("model", r"\bwrong in (?:a dozen|many|several|multiple|\d+) places\b|\bmiss(?:es|ed|ing) (?:\w+ ){0,2}(?:keys|steps|cases|parts|pieces|branches|fields)\b|\b\d+[- ](?:table|file|service|module)s?\b|\bdozens? of\b",
         1.5, "errors spread across a large change: the task outgrew the model")
)
_RULES: tuple[Signal, ...] = (
    _sig("rules", r"\b(?:soft|hard)[- ]?delet\w*\b|\bdelete from\b|\bdeleted_at\b|\bdeleted (?:\w+ )?rows\b|\b(?:permanently|irreversibly) (?:removed|deleted|erased|dropped)\b|\b(?:removed|deleted|erased) (?:\w+ ){0,3}permanently\b|\barchiv\w+\b",
         3.0, "deletion policy (soft vs hard delete) is a project rule the agent was not given"),
    _sig("rules", r"\bbusiness (?:rule|logic|requirement)s?\b|\bpolic(?:y|ies)\b|\bcompliance\b|\bconventions?\b|\baudit\b|\bregulat\w*\b|\bguidelines?\b|\bthe spec\b|\bspec(?:ification)? (?:says|requires|states)\b|\bmandat\w+\b",
         2.5, "a business rule, policy or convention: it must be written down as an explicit rule"),
    _sig("rules", r"\bignor(?:e|es|ed|ing)\b[^.;]*\b(?:rules?|docs?|documentation|polic(?:y|ies)|guidelines?|conventions?|requirements?)\b|\b(?:rules?|polic(?:y|ies)|requirements?) (?:was |were |is )?ignored\b|\bagainst (?:our|the team'?s?|the company'?s?)\b",
         3.0, "went against a documented rule: make the rule explicit, with an example and a DO NOT line"),
    _sig("rules", r"\bplain ?text\b|\bunhashed\b|\bnot hashed\b|\bwithout hashing\b|\bconstant[- ]time\b|\bsignature verification\b|\bskips? (?:the )?(?:signature|auth\w*|permission|validation|verification|sanitiz\w*|escaping)\b|\bunescaped\b|\bunencrypted\b|\bcsrf\b",
         2.5, "a security behaviour the rules never required"),
    _sig("rules", r"\bour rule\b|\bthe rule (?:is|says)\b|\bmust (?:always|never|go|be)\b|\bwe (?:never|always) (?:allow|use|require)\b|\bnever allow\b|\b(?:team|company|we) requires?\b|\brequires? (?:that|every|all)\b|\b(?:team|house) (?:rule|convention)\b|\bwithout (?:asking|approval)\b|\bbypass\w* (?:the )?(?:approval|review|workflow|process|sign-?off)\b",
         2.0, "states a must/never the agent did not follow: an unwritten or unclear rule"),
    _sig("rules", r"\b(?:pii|personal data|customer data|privacy|gdpr|mask(?:ed|ing)?|utc|local time|time ?zones?|cents|money amounts?|floats? for money|manual review|approval|status codes?)\b",
         1.5, "a domain rule (money, time, personal data, approvals) that must be stated, not inferred"),
    _sig("rules", r"\bforb(?:id|ids|idden)\b|\bnot allowed\b|\bdisallow\w*\b|\bprohibit\w*\b|\bwe (?:never|do ?n[o']t) do (?:that|this)\b|\brules?\b|\b(?:finance|legal|security|product|the business) (?:requires?|says|wants)\b",
         1.5, "names a rule or prohibition the agent was not given explicitly")
)
_TESTING: tuple[Signal, ...] = (
    _sig("testing", r"\b(?:unit )?tests? (?:were |are |all )?(?:pass(?:ed|es|ing)?|green)\b|\btests?\b[^.;]{0,40}\bpass(?:es|ed)?\b|\bpass(?:es|ed|ing)? (?:the |all |its |our )?(?:unit |existing )?tests?\b|\b(?:ci|build|suite|pipeline) (?:was |is )?(?:green|passed|passes)\b",
         2.0, "tests passed while the behaviour was wrong: the tests check too little"),
    _sig("testing", r"\b(?:fail|break|crash|choke)(?:s|ed|es|ing)? (?:in |on |at |during |against |with )?(?:the )?(?:integration|production|prod|staging|e2e|end-to-end|real)\b|\b(?:in|on|to) (?:production|prod|staging)\b|\bafter (?:the )?deploy\w*\b|\breal (?:\w+ )?(?:sandbox|data|files?|clock|traffic|users?|database|db|api|service|server|inputs?)\b|\bonly (?:shows up|happens|fails) in\b|\b(?:every )?(?:night|nightly|cron)\b",
         2.5, "broke outside the test environment: integration and behaviour were not tested"),
    _sig("testing", r"\bintegration\b|\bend-to-end\b|\be2e\b|\bworks (?:on|with) (?:the )?(?:fixtures?|samples?|test data|my machine)\b|\bworks locally\b|\blocally\b",
         1.5, "worked only where it was tested: integration over mocks is the testing fix"),
    _sig("testing", r"\bmock(?:ed|s|ing)?\b|\bfake (?:clock|time|server|client|db|database|api)\b|\bstubbed (?:out )?the\b|\bfixtures?\b",
         2.0, "mocks or fixtures hid the real dependency's behaviour"),
    _sig("testing", r"\bedge[- ]cases?\b|\bempty (?:input|list|string|file)\b|\bboundar(?:y|ies)\b|\bleap years?\b|\berror (?:path|case|scenario)s?\b|\bhappy path\b|\bidempoten\w*\b|\bnull input\b|\boff[- ]by[- ](?:one|an? \w+)\b|\bquoted\b|\bunicode\b|\boverflow\b|\bnegative (?:numbers?|values?|amounts?)\b",
         2.0, "an edge case or error path no test covered"),
    _sig("testing", r"\b(?:only )?(?:checks?|asserts?) (?:that )?(?:it |the )?(?:[\w.()]+ )?(?:returns? (?:something|a value|non-?null)|was called|exists|is (?:not )?none)\b|\bnot what it did\b|\bsnapshot\b|\bcoverage\b|\bweak tests?\b|\bno (?:\w+ )?tests?\b|\bnobody tests\b|\buntested\b|\bnever (?:exercised|tested|covered|runs?)\b|\b(?:any|a|the) tests? never\b|\bnot covered by (?:any )?tests?\b",
         2.5, "the tests check presence, or nothing, rather than behaviour"),
    _sig("testing", r"\b(?:green|passing) tests?\b|\b(?:everything|it all|all) passed\b|\bpassed in ci\b|\btests? used (?:only )?\d+\b|\bonly shows? (?:up )?(?:with|when|for)\b|\bmore than one page\b|\bcan'?t parse\b",
         1.0, "mentions tests that did not catch it")
)
_GATE: tuple[Signal, ...] = (
    _sig("quality_gate", r"\bcompil(?:es|ed|ing)\b|\bbuilds?\b(?! a\b)|\btype-?checks?\b",
         2.0, "it compiles/builds: only an automated check beyond the compiler would catch it"),
    _sig("quality_gate", r"\bviolat\w* (?:the |our )?(?:architecture|layer\w*|boundar\w*|module boundar\w*|dependency rules?|patterns?)\b|\blayering\b|\b(?:service|repository|data|domain|persistence) layer\b|\b(?:orm|repository|database|db|model) directly\b|\bdirectly (?:queries|accesses|calls|imports|hits|uses)\b|\bimports? (?:from )?(?:the )?(?:web|ui|framework|textual|server-only|server)\b|\bcircular imports?\b|\bbypass\w* the \w+ layer\b",
         3.0, "an architectural rule a tool can enforce (layers, imports, boundaries)"),
    _sig("quality_gate", r"\b(?:lint\w*|eslint|ruff|flake8|mypy|pyright|typescript|tsc|ast-?grep|pre-?commit|import-?linter|sonar\w*|semgrep|scanners?|bandit|gitleaks|type hints?)\b|\bstrict mode\b|\b`?any`?\b(?= everywhere)",
         2.5, "a lint/type/AST-grep/pre-commit check is the natural gate"),
    _sig("quality_gate", r"\bnothing (?:in (?:ci|the pipeline) )?(?:flags?|flagged|catch(?:es)?|caught|complain\w*|blocks?|blocked|stopped)\b|\bno (?:automated |\w+ )?(?:check|linter|gate|guard|hook|rule in ci|scanner)s? (?:blocked|caught|flagged|stopped)\b|\bno (?:automated )?(?:check|linter|gate|guard|hook)s?\b|\bslipped through\b|\bwithout anyone noticing\b|\b(?:caught|noticed) only in (?:code )?review\b|\bonly (?:caught|noticed) in (?:code )?review\b|\b(?:got |was |were )?merged\b|\bdid ?n[o']t complain\b|\bunnoticed\b|\b(?:is ?n[o']t|is not|never|not) run (?:on|in|against)\b|\bended up in (?:the )?(?:repo\w*|main|codebase|git)\b",
         3.0, "nothing automated caught it: add a quality gate"),
    _sig("quality_gate", r"\b(?:card (?:numbers?|data)|secrets?|api keys?|access keys?|credentials?|passwords?)\b[^.;]*\b(?:logs?|logged|hard-?coded|committed|repo\w*|source)\b|\bhard-?coded (?:secrets?|keys?|credentials?|passwords?)\b|\b(?:aws|api|access|secret) keys?\b|\beval\(|\bexec\(|\bconsole\.log\b|\bdebug(?:ging)? (?:statements|prints)\b|\bbanned (?:function|api|call)s?\b|\bunused imports?\b|\bformatting\b|\bmd5\b|\bsha1\b|\bleaks?\b",
         2.5, "a mechanically detectable anti-pattern (secrets, logging sensitive data, banned calls)"),
    _sig("quality_gate", r"\b(?:code )?review\b|\bcommitted\b|\b(?:api|access|personal) tokens?\b|\btype (?:annotations?|checks?|checking)\b|\bnot enforced\b|\breaches into\b|\braw sql\b|\bbuild is green\b",
         2.0, "a mechanical check (types, secrets, layering) would have stopped it before review")
)
SIGNALS: tuple[Signal, ...] = _CONTEXT + _MODEL + _RULES + _TESTING + _GATE

# Single words typical of each category. Phrases above carry the weight; these words only break
# the silence when an error is worded in a way no phrase anticipated. Each distinct word adds
# LEXICON_WEIGHT, at most LEXICON_CAP per category.
LEXICON_WEIGHT = 0.75
LEXICON_CAP = 2.25
LEXICON: dict[CategoryKey, tuple[str, ...]] = {
    "context": ("version", "versions", "deprecated", "upgraded", "migrated", "renamed", "existing", "already",
                "codebase", "repo", "readme", "documented", "guessed", "assumed", "unaware", "outdated", "legacy",
                "our", "ours", "instead", "reused", "reuse", "stack", "sdk", "library", "framework"),
    "model": ("complex", "complexity", "large", "full", "whole", "entire", "rewrite", "design", "concurrent",
              "concurrency", "locking", "inconsistent", "contradicts", "contradictory", "skipped", "silently",
              "partial", "incomplete", "algorithm", "tier", "struggled", "overwhelmed", "planner", "optimizer",
              "subtle", "represent", "tradeoffs", "scale"),
    "rules": ("must", "may", "never", "always", "standard", "standards", "policy", "required", "requires",
              "require", "allowed", "forbid", "forbidden", "permission", "permissions", "consent", "suspended",
              "compliance", "audit", "business", "spec", "rule", "rules", "agreed", "finance", "legal",
              "limiting", "approval", "privacy", "staff", "only"),
    "testing": ("test", "tests", "tested", "assert", "asserts", "assertion", "unit", "integration", "mock",
                "mocks", "fixture", "production", "prod", "staging", "deploy", "deployed", "customers", "users",
                "edge", "negative", "empty", "timeout", "flaky", "regression", "coverage", "passes", "passed",
                "green", "works", "status"),
    "quality_gate": ("lint", "linter", "static", "analysis", "annotations", "enforce", "enforces", "enforced",
                     "check", "gate", "hook", "merged", "pushed", "committed", "main", "approved", "pr",
                     "review", "secret", "secrets", "credentials", "directly", "layer", "imports", "swallowed",
                     "except", "injection", "unsafe", "architecture", "compiles", "material"),
}
_WORD = re.compile(r"[a-z][a-z0-9_+-]*")
_LEXICON_INDEX: dict[str, tuple[CategoryKey, ...]] = {}
for _cat, _words in LEXICON.items():
    for _w in _words:
        _LEXICON_INDEX[_w] = _LEXICON_INDEX.get(_w, ()) + (_cat,)

_TITLES = {k: c.title.lower() for k, c in CATEGORIES.items()}

_NO_SIGNAL_WHY = ("no telling phrase found; starting from context, the cheapest cause to check "
                  "(was the right example or version in front of the model?)")


def _phrase(original: str, lowered: str, m: re.Match[str]) -> str:
    """The matched words as the user wrote them (same span when lower-casing kept the length)."""
    src = original if len(original) == len(lowered) else lowered
    return " ".join(src[m.start():m.end()].split())[:60]


def suggest(text: str) -> Suggestion:
    """Score every category by the phrases in ``text``; the best one wins, with its reasons.

    Confidence is the winner's share of all evidence, shrunk when there is little evidence, so a
    single weak phrase never reads as certainty.
    """
    scores: dict[str, float] = {k: 0.0 for k in CATEGORY_KEYS}
    hits: dict[str, list[tuple[float, str]]] = {k: [] for k in CATEGORY_KEYS}
    lowered = text.lower()
    for sig in SIGNALS:
        m = sig.pattern.search(lowered)
        if m is None:
            continue
        scores[sig.category] += sig.weight
        hits[sig.category].append((sig.weight, f'"{_phrase(text, lowered, m)}": {sig.reason}'))
    words: dict[str, list[str]] = {k: [] for k in CATEGORY_KEYS}
    for w in dict.fromkeys(_WORD.findall(lowered)):
        for cat in _LEXICON_INDEX.get(w, ()):
            words[cat].append(w)
    for cat, found in words.items():
        if found:
            weight = min(LEXICON_CAP, LEXICON_WEIGHT * len(found))
            scores[cat] += weight
            listed = ", ".join(f'"{w}"' for w in found[:4])
            hits[cat].append((weight, f"words typical of {_TITLES[cat]} errors: {listed}"))
    total = sum(scores.values())
    if total == 0:
        return Suggestion(DEFAULT_CATEGORY, 0.2, [_NO_SIGNAL_WHY], scores)
    # Ties go to the earlier category in the framework's order (context before model ...).
    best: CategoryKey = max(CATEGORY_KEYS, key=lambda k: (scores[k], -CATEGORY_KEYS.index(k)))
    share = scores[best] / total
    evidence = min(1.0, scores[best] / 5.0)
    confidence = round(max(0.05, min(0.99, share * (0.5 + 0.5 * evidence))), 2)
    why = [reason for _, reason in sorted(hits[best], key=lambda h: -h[0])]
    runner_up = max((k for k in CATEGORY_KEYS if k != best), key=lambda k: scores[k])
    if scores[runner_up] > 0:
        top = max(hits[runner_up], key=lambda h: h[0])[1]
        why.append(f"also consider {_TITLES[runner_up]} ({scores[runner_up]:.1f} vs {scores[best]:.1f}): {top}")
    return Suggestion(best, confidence, why, scores)
