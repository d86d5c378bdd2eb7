"""The five-point error-diagnosis framework, as data.

Why data and not prose in the UI: the wizard, the suggester, the terminal front end and the
console pane all read the same categories, questions and fixes, so a change to the framework
(a better question, a new fix) lands everywhere at once and is covered by the same tests.

Every LLM coding error is blamed on one of five root causes. Each category carries the symptom
that usually reveals it, a short example, diagnostic questions whose answers either confirm the
category or point to another one, and the systematic fixes that remove the cause rather than the
one-off symptom.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from agentdeck.errors import AgentdeckError

CategoryKey = Literal["context", "model", "rules", "testing", "quality_gate"]
CATEGORY_KEYS: tuple[CategoryKey, ...] = ("context", "model", "rules", "testing", "quality_gate")


class UnknownCategory(AgentdeckError):
    """A category name that is not one of the five."""


@dataclass(frozen=True)
class Question:
    """A yes/no question. One answer confirms the category; the other points elsewhere.

    ``confirm_on`` is the answer that confirms the category being examined; the opposite answer
    points to ``otherwise`` (the category that explanation suggests instead).
    """

    text: str
    confirm_on: bool
    otherwise: CategoryKey
    hint: str = ""


@dataclass(frozen=True)
class Fix:
    """A systematic fix: it removes the cause for every future task, not just this one."""

    id: str
    title: str
    detail: str
    verification: str
    appends_rule: bool = False


@dataclass(frozen=True)
class Category:
    key: CategoryKey
    title: str
    symptom: str
    example: str
    when: str
    questions: tuple[Question, ...]
    fixes: tuple[Fix, ...]
    seed_example: str = ""

    @property
    def label(self) -> str:
        """How the log names it ("Rules Problem"), as in the seed's log format."""
        return f"{self.title} Problem"


CATEGORIES: dict[CategoryKey, Category] = {
    "context": Category(
        key="context",
        title="Context",
        symptom="The model lacked information: it wrote generic code instead of this project's code.",
        example="Doesn't use project patterns; uses an outdated API version.",
        when="The right example, version or convention was never in front of the model.",
        questions=(
            Question(
                "Was a working example or reference implementation of the expected pattern in the agent's context "
                "(prompt, open files, CLAUDE.md / AGENTS.md)?",
                confirm_on=False,
                otherwise="rules",
                hint="If it saw the pattern and still deviated, the problem is an unwritten rule, not missing context.",
            ),
            Question(
                "Does the CLAUDE.md / AGENTS.md nearest to the changed files name the library, API version or "
                "pattern involved?",
                confirm_on=False,
                otherwise="rules",
            ),
            Question(
                "Is the output plausible in some other project, just not the way this project does it?",
                confirm_on=True,
                otherwise="model",
                hint="Generic-but-valid code points at context; incoherent code points at the model.",
            ),
        ),
        fixes=(
            Fix(
                "context-examples",
                "Inject examples into the prompt",
                "Put one short, working example of the expected pattern in the task prompt or a prompt template.",
                "Re-run the same task and confirm the output follows the example's pattern.",
            ),
            Fix(
                "context-hierarchical",
                "Hierarchical CLAUDE.md / AGENTS.md",
                "Add a CLAUDE.md / AGENTS.md in the directory of the affected code that states the pattern, "
                "library and version it uses (the nearest file wins, so keep it local).",
                "Start a fresh session in that directory and confirm the agent cites or follows the file.",
            ),
            Fix(
                "context-reference",
                "Reference an existing implementation",
                "Point the agent at the file that already does this right (\"follow src/api/orders.py\").",
                "Generate the next endpoint of the same kind and diff it against the reference.",
            ),
        ),
        seed_example="Pagination patterns in API endpoints; the wrong Stripe API version.",
    ),
    "model": Category(
        key="model",
        title="Model",
        symptom="The current model is not capable enough: it fails on complex work or leaves it incomplete.",
        example="Fails on complex architecture; half-finished multi-part solutions.",
        when="Context and rules were adequate, but the task was beyond the tier it ran on.",
        questions=(
            Question(
                "Was the task large or multi-part (many files, several interacting systems, new architecture)?",
                confirm_on=True,
                otherwise="context",
            ),
            Question(
                "Did the agent have the right examples and rules, yet still produce an incomplete or incoherent "
                "solution?",
                confirm_on=True,
                otherwise="context",
                hint="If something it needed was missing, fix the context first; a bigger model guesses better, "
                "not correctly.",
            ),
            Question(
                "Does a stronger tier, or the same task split into smaller steps, get it right?",
                confirm_on=True,
                otherwise="rules",
            ),
        ),
        fixes=(
            Fix(
                "model-tier",
                "Switch to a stronger model tier",
                "Route this kind of task one tier up (fast -> balanced -> smart, Haiku -> Sonnet -> Opus); "
                "with agentdeck, add a routing rule or request the tier explicitly.",
                "Re-run the task on the new tier and check the result is complete; note the cost difference.",
            ),
            Fix(
                "model-split",
                "Split the task into smaller steps",
                "Break the work into steps that each fit the model (one subsystem, one file, one interface at "
                "a time) and verify between steps.",
                "Run the steps in order and confirm each passes its own check before the next.",
            ),
            Fix(
                "model-plan",
                "Ask for a plan first (chain of thought)",
                "Have the model write and review a plan before any code for tasks of this shape.",
                "Confirm the plan covers every part of the task and the code follows it.",
            ),
        ),
        seed_example="A multi-auth system (OAuth + SAML + JWT).",
    ),
    "rules": Category(
        key="rules",
        title="Rules",
        symptom="A behaviour was never written down: the model violates the project's patterns despite context.",
        example="Violates the data-deletion policy (hard delete instead of soft delete).",
        when="CLAUDE.md / AGENTS.md does not state the rule, its edge cases or the anti-pattern.",
        questions=(
            Question(
                "Is the expected behaviour written as an explicit rule in CLAUDE.md / AGENTS.md?",
                confirm_on=False,
                otherwise="quality_gate",
                hint="A written rule that is still broken needs enforcement: an automated gate.",
            ),
            Question(
                "Does that rule come with an example and a DO NOT list naming the anti-pattern?",
                confirm_on=False,
                otherwise="quality_gate",
            ),
            Question(
                "Did the agent have the relevant code in context and still choose differently?",
                confirm_on=True,
                otherwise="context",
            ),
        ),
        fixes=(
            Fix(
                "rules-explicit",
                "Add an explicit rule with an example and a DO NOT list",
                "Write the rule in CLAUDE.md / AGENTS.md with one correct example and a DO NOT line for the "
                "anti-pattern the agent produced.",
                "Re-run the task that failed and confirm the rule is followed; grep the file for the rule.",
                appends_rule=True,
            ),
            Fix(
                "rules-edge-cases",
                "Document the edge cases with examples",
                "List the edge cases the rule covers (and the ones it does not) with an example for each.",
                "Ask the agent to handle each documented edge case and check the output.",
            ),
        ),
        seed_example="Soft delete required for audit compliance; passwords must be hashed.",
    ),
    "testing": Category(
        key="testing",
        title="Testing",
        symptom="Verification was weak: the change passed its tests but broke in integration or production.",
        example="Passes unit tests but fails in production.",
        when="Tests check that something exists or was called, not what it does.",
        questions=(
            Question(
                "Did the tests pass while the behaviour was wrong?",
                confirm_on=True,
                otherwise="quality_gate",
                hint="If no test could have run on it at all, the missing piece is an automated gate.",
            ),
            Question(
                "Do the tests check presence (it returns something, it was called) rather than behaviour, "
                "edge cases and error paths?",
                confirm_on=True,
                otherwise="rules",
            ),
            Question(
                "Are the parts involved tested only with mocks, never together against real dependencies?",
                confirm_on=True,
                otherwise="quality_gate",
            ),
        ),
        fixes=(
            Fix(
                "testing-behaviour",
                "Test behaviour, not presence",
                "Assert on outputs and side effects that would change if the feature broke.",
                "Break the feature on purpose (revert the fix) and confirm the new test fails.",
            ),
            Fix(
                "testing-edge-cases",
                "Test edge cases and error scenarios",
                "Add cases for empty, boundary, malformed and failing inputs, and for retries and timeouts.",
                "Run the new cases against the old code and confirm at least one fails.",
            ),
            Fix(
                "testing-integration",
                "Integration tests over mocks",
                "Exercise the real database, service or SDK (a local instance or official mock) instead of a "
                "hand-written mock.",
                "Run the integration test in CI and confirm it catches the original failure.",
            ),
        ),
        seed_example="Email validation: a weak test checks a value came back; a strong one checks what it is.",
    ),
    "quality_gate": Category(
        key="quality_gate",
        title="Quality Gate",
        symptom="No automated check: the code compiles and passes review but violates the architecture.",
        example="Compiles but violates patterns (database access in a route handler).",
        when="A requirement that a tool could enforce is left to people noticing.",
        questions=(
            Question(
                "Does the code compile, type-check and pass its tests while breaking an architectural or "
                "security requirement?",
                confirm_on=True,
                otherwise="testing",
            ),
            Question(
                "Could a tool detect the violation mechanically (an import, a call in the wrong layer, a banned "
                "function, a logged secret)?",
                confirm_on=True,
                otherwise="rules",
                hint="If only judgement can catch it, write it down as a rule instead.",
            ),
            Question(
                "Is there currently no lint, type, AST-grep, pre-commit or CI check for it?",
                confirm_on=True,
                otherwise="testing",
            ),
        ),
        fixes=(
            Fix(
                "gate-lint",
                "Add a lint rule",
                "Ban the pattern in the linter (ESLint no-restricted-imports, ruff banned-api / flake8-tidy-imports, "
                "import-linter contracts).",
                "Re-introduce the violation and confirm the linter fails with the rule's message.",
            ),
            Fix(
                "gate-types",
                "Stricter types",
                "Turn on strict TypeScript / mypy --strict for the affected package so the mistake cannot type-check.",
                "Confirm the original change now fails type checking.",
            ),
            Fix(
                "gate-ast-grep",
                "An AST-grep rule",
                "Write an AST-grep pattern for the structural anti-pattern (e.g. db calls inside route handlers).",
                "Run ast-grep scan on the original change and confirm it reports the violation.",
            ),
            Fix(
                "gate-pre-commit",
                "A pre-commit hook / CI check",
                "Run the check on every commit and in CI so nothing merges without it.",
                "Commit a deliberate violation in a scratch branch and confirm the hook blocks it.",
            ),
        ),
        seed_example="Direct database access in route handlers; card data written to logs (PCI).",
    ),
}

_ALIASES: dict[str, CategoryKey] = {
    "context": "context",
    "ctx": "context",
    "model": "model",
    "rules": "rules",
    "rule": "rules",
    "testing": "testing",
    "test": "testing",
    "tests": "testing",
    "quality_gate": "quality_gate",
    "quality-gate": "quality_gate",
    "qualitygate": "quality_gate",
    "quality gate": "quality_gate",
    "gate": "quality_gate",
}


def parse_category(name: str) -> CategoryKey:
    """Accept the canonical key or an obvious spelling ("Quality Gate", "rule"); reject the rest clearly."""
    norm = " ".join(name.strip().lower().replace("problem", "").split())
    key = _ALIASES.get(norm) or _ALIASES.get(norm.replace(" ", "_"))
    if key is None:
        raise UnknownCategory(f"unknown category {name!r}; use one of: {', '.join(CATEGORY_KEYS)}")
    return key


def category(key: str) -> Category:
    return CATEGORIES[parse_category(key)]


def fix_by_id(fix_id: str) -> Fix:
    for cat in CATEGORIES.values():
        for fx in cat.fixes:
            if fx.id == fix_id:
                return fx
    raise AgentdeckError(f"unknown fix {fix_id!r}")


def fixes_for(keys: list[CategoryKey] | tuple[CategoryKey, ...]) -> list[tuple[CategoryKey, Fix]]:
    """The fixes of several categories, primary first, each once."""
    out: list[tuple[CategoryKey, Fix]] = []
    for k in dict.fromkeys(keys):
        out.extend((k, fx) for fx in CATEGORIES[k].fixes)
    return out


@dataclass(frozen=True)
class ExerciseError:
    """One of the seed's exercise-2 errors with the category the framework assigns it."""

    text: str
    category: CategoryKey
    fix: str
    verification: str = field(default="")


# Chapter 12, exercise 2: the five errors every reader diagnoses.
EXERCISE_2: tuple[ExerciseError, ...] = (
    ExerciseError("Wrong API version used", "context", "context-hierarchical",
                  "Regenerate the client call and confirm it targets the pinned API version."),
    ExerciseError("Ignores business rule from docs", "rules", "rules-explicit",
                  "Re-run the feature and confirm the rule is applied."),
    ExerciseError("Passes unit tests but fails integration", "testing", "testing-integration",
                  "The new integration test fails on the old code and passes on the fix."),
    ExerciseError("Uses hard delete instead of soft delete", "rules", "rules-explicit",
                  "Generate a delete endpoint and confirm it sets deleted_at."),
    ExerciseError("Code compiles but violates architecture", "quality_gate", "gate-ast-grep",
                  "Re-introduce the violation and confirm the check fails."),
)
