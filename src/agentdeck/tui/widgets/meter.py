"""A budget meter: green, amber past 80 %, red at 100 %, with the numbers beside the bar."""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget

from agentdeck.tui.model import fmt_usd

AMBER_AT = 0.8


def meter_level(spent: float, budget: float) -> str:
    if budget <= 0:
        return "none"
    share = spent / budget
    return "over" if share >= 1.0 else "warn" if share >= AMBER_AT else "ok"


class Meter(Widget):
    """``label  ███████░░░░  $4.12 / $10.00  41%``; the bar colour says how close the budget is."""

    COMPONENT_CLASSES = {"meter--ok", "meter--warn", "meter--over", "meter--none", "meter--empty", "meter--label"}
    DEFAULT_CSS = """
    Meter { height: 1; width: 1fr; }
    Meter > .meter--ok { color: $success; }
    Meter > .meter--warn { color: $warning; text-style: bold; }
    Meter > .meter--over { color: $error; text-style: bold; }
    Meter > .meter--none { color: $foreground-muted; }
    Meter > .meter--empty { color: $panel-lighten-2; }
    Meter > .meter--label { color: $foreground-muted; }
    """

    def __init__(self, label: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.label = label
        self.spent = 0.0
        self.budget = 0.0

    @property
    def level(self) -> str:
        return meter_level(self.spent, self.budget)

    def set_value(self, spent: float, budget: float) -> None:
        if (round(spent, 5), budget) != (round(self.spent, 5), self.budget):
            self.spent, self.budget = spent, budget
            self.set_class(self.level == "warn", "-warn")
            self.set_class(self.level == "over", "-over")
            self.refresh()

    def render(self) -> Text:
        level = self.level
        numbers = f" {fmt_usd(self.spent)} / {fmt_usd(self.budget)}" if self.budget > 0 else f" {fmt_usd(self.spent)} (no budget)"
        share = self.spent / self.budget if self.budget > 0 else 0.0
        pct = f" {share:4.0%}" if self.budget > 0 else ""
        label = f"{self.label:<5}"
        bar_w = max(4, self.size.width - len(label) - len(numbers) - len(pct) - 1)
        filled = min(bar_w, int(round(bar_w * min(share, 1.0))))
        t = Text()
        t.append(label, self.get_component_rich_style("meter--label"))
        style = self.get_component_rich_style(f"meter--{level}")
        t.append("█" * filled, style)
        t.append("░" * (bar_w - filled), self.get_component_rich_style("meter--empty"))
        t.append(numbers, style)
        t.append(pct, style)
        return t
