"""The console's panes, in tab order: the one list the tabs, the number keys and the palette read.

Why one list: the tab bar, the ``1``-``5`` bindings and the palette's "Go to ..." commands
each used to spell the panes out; adding a pane meant three edits that could disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from textual.widget import Widget

from agentdeck.tui.panes.budget import BudgetPane
from agentdeck.tui.panes.diagnose_pane import DiagnosePane
from agentdeck.tui.panes.flaky_pane import FlakyPane
from agentdeck.tui.panes.providers import ProvidersPane
from agentdeck.tui.panes.routing import RoutingPane

if TYPE_CHECKING:
    from agentdeck.tui.app import ConsoleApp


@dataclass(frozen=True)
class PaneSpec:
    """One tab: its id (also the TabPane's), its title, what the palette says, how to build it."""

    id: str
    title: str
    summary: str
    build: Callable[["ConsoleApp"], Widget]

    @property
    def key(self) -> str:
        """The number key that shows it (its place in ``PANES``)."""
        return str(PANES.index(self) + 1)


PANES: tuple[PaneSpec, ...] = (
    PaneSpec("routing", "Routing", "live calls, their tier and model, savings",
             lambda app: RoutingPane(app.tui.max_rows, id="routing-pane")),
    PaneSpec("providers", "Providers", "per-provider limits (AIMD), in flight, 429s",
             lambda app: ProvidersPane(id="providers-pane")),
    PaneSpec("budget", "Budget", "spend against the budgets, the emergency stop, alerts",
             lambda app: BudgetPane(id="budget-pane")),
    PaneSpec("diagnose", "Diagnose", "the five-point diagnosis wizard and its log",
             lambda app: DiagnosePane(app.db_path, project_dir=app.project_dir)),
    PaneSpec("flaky", "Flaky", "run the project's tests many times and name each flaky one's cause",
             lambda app: FlakyPane(app.db_path, app.project_dir)),
)

PANE_IDS: tuple[str, ...] = tuple(p.id for p in PANES)
