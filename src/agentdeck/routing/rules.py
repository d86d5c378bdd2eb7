"""The classifier's knowledge as data: phrase patterns per kind of task, and extra rules from config.

Why data and not code: the seed's advice is to "start conservative, expand over time" and to
refine the classifier from the escalation log. Patterns kept here as plain regex fragments
can be read, diffed and tuned without touching the decision logic in ``classifier.py``.
Every fragment is matched against lower-cased text, so fragments are written in lower case.

The decision tree the fragments serve (seed 4.4.2/4.4.3/4.7.5):
  read / list / find / grep / simple edit               -> fast
  feature, bug fix, tests, 2-5 files                     -> balanced
  design, architecture, migration, security, auth,
  payments, crypto, performance, production debugging,
  6+ files or several services                           -> smart
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from agentdeck.config import TIERS
from agentdeck.errors import ConfigError

# --- politeness and filler that precede the verb a person would act on -------------------
LEAD_FILLER = (
    r"please|pls|kindly|can you|could you|would you|will you|hey|hi|ok|okay|so|now|first|"
    r"then|also|and|next|quickly|just|go ahead and|i need you to|i want you to|i'd like you to|"
    r"help me|let's|lets|we need to|you should|try to|claude|codex"
)

# --- reading and finding: fast unless the clause also asks why / for a plan ---------------
SEARCH_LEAD = (
    r"grep|rg|ripgrep|find|search|locate|list|ls|count|look (?:up|for|through)|"
    r"where(?:'s| is| are| do| does| did)|which (?:[\w-]+ )?(?:files?|functions?|modules?|classes?|tests?|"
    r"services?|endpoints?|places?|callers?|lines?|tables?|routes?|jobs?|dependencies|packages?|"
    r"versions?|branches|commits?)|get me (?:a )?(?:list|the path)|trace where"
)
READ_LEAD = (
    r"read|show(?: me)?|open|cat|print|display|view|look at|tell me|explain|summari[sz]e|"
    r"describe|what(?:'s| is| are| does| do)|what (?:[\w-]+ ){1,2}(?:does|do|is|are)|"
    r"how (?:does|many|much)|check (?:whether|if)|inspect|understand|walk me through|go through|"
    r"how (?:do|can|should) (?:i|we|you) (?:run|use|start|install|build|configure|call|invoke|find|get|see|"
    r"check|open|list|read|print|view|enable|disable|set)"
)
# A "find ..." that asks for a cause, a plan or a judgement is investigation, not lookup.
NOT_A_LOOKUP = (
    r"why|root cause|what(?:'s| is) (?:wrong|causing|broken)|the cause|steps to|a plan|"
    r"the plan|an approach|approach(?:es)? (?:to|for)|options for|trade-?offs?|risks?|strategy|"
    r"alternatives|pros and cons|how (?:to|we should|should we) (?:design|migrate|architect|scale)"
)

# --- cosmetic edits: fast whatever module they touch ---------------------------------------
COSMETIC: dict[str, Sequence[str]] = {
    "typo": (r"typos?", r"misspell(?:ed|ing|ings)?", r"spelling (?:mistake|error)s?"),
    "comment": (
        r"(?:add|write|update|fix|improve|remove|delete|clarify|reword|expand)\s+(?:[\w'-]+\s+){0,2}?"
        r"(?:comments?|docstrings?|jsdoc|javadoc|doc ?comments?|type hints?|type annotations?|"
        r"license headers?)\b(?! (?:section|system|feature|functionality|api|endpoint|service|"
        r"thread|moderation|widget|form|box|table|model))",
        r"add (?:a |an )?(?:todo|note) comment",
        r"copyright (?:headers?|notices?|years?|lines?)",
    ),
    "docs": (
        r"(?:update|fix|edit|tweak|touch up|proofread|reword|polish|correct)\b[^.\n]{0,30}?\b"
        r"(?:readme|changelog|docs|documentation|contributing(?:\.md)?|release notes|man page)\b",
        r"add (?:a |an )?(?:entry|note|line|section|badge|link) (?:to|in) (?:the )?"
        r"(?:readme|changelog|docs|documentation)\b",
        r"(?:write|generate|draft|suggest) (?:a |an |the )?(?:good )?(?:commit message|pr description|"
        r"pull request description|changelog entry|release notes?)",
    ),
    "formatting": (
        r"reformat",
        r"(?:run|apply) (?:black|prettier|ruff format|gofmt|rustfmt|isort)",
        r"fix (?:the )?(?:indentation|formatting|whitespace|line endings|lint(?:ing)? "
        r"(?:errors|warnings|issues))",
        r"trailing whitespace",
    ),
    "logging": (
        r"add (?:a |an |some )?(?:debug |info |warning )?(?:log|logging|print|console\.log) "
        r"(?:line|statement|message|call)s?",
        r"add logging to",
        r"(?:remove|delete|clean up|strip) (?:the |all |any )?(?:stray |leftover |temporary )?(?:debug(?:ging)? )?"
        r"(?:print|console\.log|log|logging|debug) (?:statements?|calls?|lines?)",
        r"change (?:the )?log (?:level|message)",
    ),
}

# --- small edits: fast when they stay in one file -----------------------------------------
SMALL_EDIT: dict[str, Sequence[str]] = {
    "rename": (r"rename",),
    "small-edit": (
        r"fix (?:the |an |a )?(?:broken |missing |unused |wrong )?imports?",
        r"(?:remove|delete) (?:the |an |all )?unused (?:imports?|variables?|code|functions?)",
        r"sort (?:the )?imports",
        r"bump\b[^.\n]{0,30}\bversion",
        r"change (?:the )?(?:[\w-]+ ){0,2}?(?:default )?(?:value|constant|timeout|string|label|text|message|"
        r"colou?r|wording|copy|port|url|title|placeholder)\b",
        r"(?:one-line|one line|single-line|trivial|tiny|small|quick|simple) "
        r"(?:change|fix|edit|tweak|update)",
        r"add (?:a )?type (?:hint|annotation)",
        r"make (?:[\w`'\".-]+ ){0,3}(?:a constant|private|public|readonly|final)",
    ),
}

# --- writing tests: balanced (the seed's Sonnet tier) --------------------------------------
TESTS_LEAD = (
    r"(?:write|add|create|generate|extend|improve)\b[^.\n]{0,40}?\b"
    r"(?:tests?|test cases?|test coverage|specs?|unit tests?|integration tests?|e2e tests?|"
    r"regression tests?|fixtures?)\b"
)
TESTS_ANY = (r"increase (?:test )?coverage", r"test coverage for", r"cover\b[^.\n]{0,30}\bwith tests")

# --- smart work -----------------------------------------------------------------------------
PROD_WORDS = (
    r"production|prod|live site|on-?call|sev ?[012]|p0|p1|hotfix|"
    r"(?:customers?|users?) (?:are |is )?(?:seeing|reporting|hitting|getting)"
)
TROUBLE_WORDS = (
    r"debug\w*|investigat\w*|diagnos\w*|fix\w*|broken|fail\w*|errors?|exceptions?|crash\w*|down|"
    r"5\d\ds?|5xxs?|timeouts?|timing out|spikes?|leak\w*|hang\w*|deadlock\w*|stuck|root cause|slow\w*|"
    r"latency|dropp\w*|lost|missing|corrupt\w*|wrong"
)
SMART: dict[str, Sequence[str]] = {
    "production-debugging": (r"outage", r"incident", r"post-?mortem"),
    "hard-bug": (
        r"race conditions?", r"deadlocks?", r"memory leaks?", r"data corruption", r"heisenbug",
        r"intermittent(?:ly)? (?:fail\w*|crash\w*|hang\w*|error\w*)", r"flaky in ci",
    ),
    "architecture": (
        r"architecture", r"architectural", r"re-?architect\w*", r"system design",
        r"design (?:a |an |the |our )?(?:new )?(?:system|service|schema|api|architecture|pipeline|"
        r"protocol|data model|database|storage layer|queue|event bus|caching layer|sharding)",
        r"design doc", r"technical design", r"\brfc\b", r"trade-?offs?", r"scalab\w*",
    ),
    "migration": (
        r"migrat(?:e|es|ed|ion|ions|ing)", r"schema changes?", r"alter table", r"drop (?:table|column)",
        r"rename (?:the |a )?(?:[\w.]+ ){0,2}(?:column|table)s?\b(?! component)",
        r"upgrade\b[^.\n]{0,40}?\b(?:from|to) (?:python|django|react|node|postgres\w*|rails|spring|"
        r"java|angular|vue|next|flask|fastapi|pydantic|sqlalchemy|spring boot|laravel|\.net) ?v?\d",
        r"port (?:\w+ ){0,3}(?:from|to) (?:rust|go|typescript|python|java|kotlin|swift)",
        r"rewrite (?:\w+ ){0,4}in (?:rust|go|typescript|python|java|kotlin|swift)",
    ),
    "large-refactor": (
        r"(?:refactor|rewrite|restructure|overhaul|rework)\w*\s+(?:the\s+|our\s+)?"
        r"(?:entire|whole|all|every)\b",
        r"(?:entire|whole) (?:codebase|repo|repository|monorepo|system|app|application|backend|"
        r"frontend|service layer|data layer)",
        r"system-?wide", r"codebase-?wide", r"large(?:-scale)? refactor\w*", r"big refactor\w*",
        r"across (?:the |all |every |our )?(?:codebase|repo|repository|monorepo|services|"
        r"microservices|modules|packages)",
        r"multiple services", r"(?:all|every) (?:of )?(?:the |our )?(?:services|microservices)",
    ),
    "performance": (
        r"performance", r"\bperf\b", r"optimi[sz]\w*(?! (?:the )?imports)", r"speed up", r"latency",
        r"throughput", r"bottlenecks?", r"too slow", r"slow (?:query|queries|endpoint|page|request)s?",
        r"make (?:[\w-]+ ){0,4}(?:faster|quicker|more efficient|use less memory)",
        r"reduce (?:the )?(?:[\w-]+ )?(?:latency|memory|cpu|load time|startup time|response time)",
        r"n\+1", r"profil(?:ing|er)", r"profile (?:the|it|this|our|that|why)", r"memory usage", r"cpu usage", r"scal(?:e|ing) (?:to|up|out)",
    ),
}
# Leading verbs the seed's template sends to Opus on their own ("^design|architect|plan|migrate").
SMART_LEAD = {"design": r"design|architect|redesign", "plan": r"plan (?:the|a|an|our|how)"}

# --- sensitive domains: smart when the task changes them ---------------------------------
DOMAINS: dict[str, Sequence[str]] = {
    "security": (
        r"security", r"secure", r"vulnerab\w*", r"cve(?:-[\d-]+)?", r"xss", r"csrf", r"ssrf",
        r"sql injection", r"injection", r"sanitiz\w*", r"exploit\w*", r"pen-?test\w*", r"secrets?",
        r"credentials?", r"passwords?", r"permission checks?", r"access control", r"rbac",
        r"privilege\w*", r"rate-?limit\w* (?:the )?login", r"audit log",
    ),
    "auth": (
        r"auth", r"authn", r"authz", r"authenticat\w*", r"authori[sz]\w*", r"login", r"log-in",
        r"sign-?in", r"sign-?up", r"sso", r"saml", r"oauth2?", r"oidc", r"jwts?", r"session tokens?",
        r"2fa", r"mfa", r"api keys?", r"refresh tokens?", r"access tokens?",
    ),
    "payments": (
        r"payments?", r"billing", r"invoic\w*", r"refunds?", r"checkout", r"stripe", r"paypal",
        r"braintree", r"charg(?:e|es|ed|ing) (?:the |a )?(?:card|customer)s?", r"double-?charg\w*",
        r"pci", r"credit cards?", r"payouts?", r"ledger",
    ),
    "crypto": (
        r"crypto\w*", r"encrypt\w*", r"decrypt\w*", r"ciphers?", r"tls", r"ssl", r"certificates?",
        r"hmac", r"signing keys?", r"signature verification", r"key rotation", r"kms", r"hash(?:ing)? "
        r"(?:the )?passwords?", r"bcrypt", r"argon2",
    ),
}

# --- ordinary development: balanced ---------------------------------------------------------
BUG_FIX = (
    r"fix\w*", r"bugs?", r"debug\w*", r"broken", r"crash\w*", r"exceptions?",
    r"errors?(?! (?:messages?|handling|handler|codes?|pages?|types?|classes?|strings?|text|copy))",
    r"regressions?", r"failing", r"fails", r"(?:doesn't|does not|isn't|is not|not) work\w*",
    r"traceback", r"stack ?trace", r"wrong (?:result|output|value|answer)s?", r"off-by-one",
)
FEATURE = (
    r"implement\w*", r"add", r"build", r"create", r"introduce", r"support", r"integrate",
    r"wire (?:up|in)", r"hook up", r"set up", r"setup", r"develop", r"enable", r"extend",
    r"write (?:a|an|the|some) (?:new )?(?:\w+ )?(?:function|class|endpoint|script|module|command|"
    r"handler|component|service|parser|cli|tool|hook|middleware|query|job|worker|page|view|route)",
    r"make (?:it|the \w+) (?:support|handle|accept|return)", r"allow", r"convert", r"replace",
    r"update", r"change", r"modify", r"move", r"remove", r"delete", r"upgrade", r"edit", r"adjust",
    r"tweak", r"rewrite", r"patch",
)
REFACTOR = (
    r"refactor\w*", r"restructur\w*", r"clean(?:s|ed)? up", r"cleanup", r"extract", r"simplif\w*",
    r"split", r"reorgani[sz]e", r"dedupe", r"deduplicate", r"consolidate", r"decouple", r"rework",
)

# Verbs that start a new piece of work inside one message ("find X and fix it").
CHANGE_VERBS = (
    r"fix|add|implement|change|update|refactor|rewrite|remove|delete|replace|migrate|create|write|"
    r"build|modify|patch|move|convert|optimi[sz]e|improve|redesign|design|debug|make|set up|rename|"
    r"harden|secure|extend|port|upgrade|clean up|split|merge|introduce|integrate|wire|hook|"
    r"restructure|investigate|diagnose|document|test|deploy|ship|rework|speed up|edit|adjust|tweak"
)

# Verbs that make a sentence about sensitive code a change to it ("rotate the keys").
DOMAIN_ACTIONS = (
    r"review|audit|rotate|re-?encrypt|hash|encrypt|decrypt|validate|verify|enforce|store|handle|"
    r"check|protect|lock down|restrict|expose|leak|bypass|sign|revoke|expire"
)

# --- counting files and services ----------------------------------------------------------
FILE_EXTENSIONS = (
    r"py|pyi|ipynb|ts|tsx|js|jsx|mjs|cjs|go|rs|java|kt|kts|rb|php|cs|c|h|cc|cpp|hpp|swift|scala|"
    r"sql|md|rst|txt|toml|ya?ml|json|ini|cfg|conf|sh|bash|html|css|scss|less|vue|svelte|tf|proto|"
    r"graphql|gql|lock|env|xml|gradle|ex|exs|erl|dart|lua|r|m|mm|zig|nim|sol"
)
# Things that look like file names but are product names.
NOT_FILES = frozenset({
    "node.js", "next.js", "vue.js", "nuxt.js", "express.js", "react.js", "three.js", "d3.js",
    "chart.js", "nest.js", "socket.io", "ember.js", "backbone.js", "alpine.js", "solid.js",
    "e.g", "i.e", "vs.code",
})
NUMBER_WORDS = {
    "one": 1, "a single": 1, "single": 1, "two": 2, "both": 2, "a couple of": 2, "couple of": 2,
    "three": 3, "few": 3, "a few": 3, "several": 3, "multiple": 3, "four": 4, "five": 5, "six": 6,
    "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "a dozen": 12,
    "dozen": 12, "dozens of": 24, "many": 6, "lots of": 6, "hundreds of": 100,
}
FILE_UNITS = r"files|modules|components|classes|handlers|pages|controllers|views|templates|packages"
SERVICE_UNITS = r"services|microservices|repos|repositories|apps|applications|systems"

DEFAULT_SCAN_CHARS = 2000


# --- extra rules from config -----------------------------------------------------------------
_RULE_KEYS = frozenset({"name", "tier", "any", "regex", "unless", "priority", "description"})


@dataclass(frozen=True, slots=True)
class ConfigRule:
    """One `[[routing.rules]]` entry, compiled.

    Shape in TOML::

        [[routing.rules]]
        name = "db-migrations"          # the Decision.rule it produces
        tier = "smart"                  # fast | balanced | smart
        any = ["alembic", "schema change"]   # phrases, case-insensitive, whole words
        regex = ["^deploy\\\\b"]         # optional regular expressions (Python syntax)
        unless = ["grep", "list"]        # optional phrases that veto the rule
        priority = 10                   # higher runs first (default 0)
        description = "why this rule exists"   # optional, shown in the reason

    Config rules run before the built-in tree, highest priority first, so a team can pin
    what it knows about its own code ("anything touching ledger/ goes to smart").
    """

    name: str
    tier: str
    pattern: re.Pattern[str]
    unless: re.Pattern[str] | None
    priority: int
    description: str


def _phrase(p: str) -> str:
    """A phrase as a regex: any whitespace between words, whole words at the edges that are letters."""
    p = p.strip().lower()
    body = r"\s+".join(re.escape(w) for w in p.split())
    head = r"(?<!\w)" if p[:1].isalnum() or p[:1] == "_" else ""
    tail = r"(?!\w)" if p[-1:].isalnum() or p[-1:] == "_" else ""
    return head + body + tail


def _str_list(raw: Any, where: str) -> list[str]:
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not all(isinstance(x, str) and x.strip() for x in raw):
        raise ConfigError(f"{where}: must be a list of non-empty strings")
    return list(raw)


def compile_config_rules(raw_rules: Sequence[Mapping[str, Any]], source: str = "<config>") -> tuple[ConfigRule, ...]:
    """Validate and compile `routing.rules`; the first problem is one error naming `routing.rules[i].field`."""
    out: list[tuple[int, int, ConfigRule]] = []
    seen: set[str] = set()
    for i, raw in enumerate(raw_rules):
        at = f"{source}: routing.rules[{i}]"
        if not isinstance(raw, Mapping):
            raise ConfigError(f"{at}: must be a table like {{name = \"...\", tier = \"smart\", any = [\"...\"]}}")
        for k in raw:
            if k not in _RULE_KEYS:
                raise ConfigError(f"{at}.{k}: unknown key (allowed: {', '.join(sorted(_RULE_KEYS))})")
        name = raw.get("name")
        if not isinstance(name, str) or not re.fullmatch(r"[a-z0-9][a-z0-9_.:-]*", name):
            raise ConfigError(f"{at}.name: required; lower-case letters, digits and - _ . : only")
        if name in seen:
            raise ConfigError(f"{at}.name: duplicate rule name {name!r}")
        seen.add(name)
        tier = raw.get("tier")
        if tier not in TIERS:
            raise ConfigError(f"{at}.tier: must be one of {', '.join(TIERS)} (got {tier!r})")
        alts: list[str] = []
        if "any" in raw:
            alts += [_phrase(p) for p in _str_list(raw["any"], f"{at}.any")]
        if "regex" in raw:
            for j, rx in enumerate(_str_list(raw["regex"], f"{at}.regex")):
                try:
                    re.compile(rx)
                except re.error as e:
                    raise ConfigError(f"{at}.regex[{j}]: invalid regular expression: {e}") from None
                alts.append(f"(?:{rx})")
        if not alts:
            raise ConfigError(f"{at}.any: a rule needs `any` phrases or a `regex`")
        unless = None
        if "unless" in raw:
            unless = re.compile("|".join(_phrase(p) for p in _str_list(raw["unless"], f"{at}.unless")), re.I | re.M)
        priority = raw.get("priority", 0)
        if not isinstance(priority, int) or isinstance(priority, bool):
            raise ConfigError(f"{at}.priority: must be an integer")
        desc = raw.get("description", "")
        if not isinstance(desc, str):
            raise ConfigError(f"{at}.description: must be a string")
        rule = ConfigRule(name, tier, re.compile("|".join(alts), re.I | re.M), unless, priority, desc)
        out.append((-priority, i, rule))
    out.sort(key=lambda t: (t[0], t[1]))
    return tuple(r for _, _, r in out)
