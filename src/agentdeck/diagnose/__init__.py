"""Error diagnosis with the five-point framework: context, model, rules, testing, quality gate.

The core (framework data, suggester, wizard state machine, log, CLAUDE.md append) has no UI in it;
the terminal wizard (`terminal`), the CLI (`agentdeck.cli.diagnose`) and the console pane
(`agentdeck.tui.panes.diagnose_pane`) are front ends over it.
"""

from agentdeck.diagnose.framework import CATEGORIES, CATEGORY_KEYS, Category, CategoryKey, Fix, Question, parse_category
from agentdeck.diagnose.suggest import Suggestion, suggest
from agentdeck.diagnose.wizard import Step, Verdict, Wizard, WizardError

__all__ = [
    "CATEGORIES", "CATEGORY_KEYS", "Category", "CategoryKey", "Fix", "Question", "Step", "Suggestion", "Verdict",
    "Wizard", "WizardError", "parse_category", "suggest",
]
