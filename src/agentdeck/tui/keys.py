"""Keys people already have in their fingers (vim, less, k9s), shared by every table.

``j``/``k`` move, ``g``/``G`` go to the top and the bottom, the arrows and home/end do the same;
the Footer shows the letter keys as two compact groups, so a newcomer sees them without ``?``.
"""

from __future__ import annotations

from textual.binding import Binding
from textual.widgets import DataTable

MOVE = Binding.Group("Move", compact=True)
ENDS = Binding.Group("Top/Bottom", compact=True)


def table_bindings(down: str, up: str, top: str, bottom: str) -> list[Binding]:
    """j/k and g/G (shown in the Footer) plus the arrow and home/end keys (not shown) for four actions."""
    return [
        Binding("j", down, "Down", group=MOVE),
        Binding("k", up, "Up", group=MOVE),
        Binding("down", down, "Down", show=False),
        Binding("up", up, "Up", show=False),
        Binding("g", top, "Top", group=ENDS),
        Binding("G", bottom, "Bottom", group=ENDS, key_display="G"),
        Binding("home", top, "Top", show=False),
        Binding("end", bottom, "Bottom", show=False),
    ]


class NavTable(DataTable[str]):
    """A DataTable that also answers j/k and g/G."""

    BINDINGS = table_bindings("cursor_down", "cursor_up", "scroll_top", "scroll_bottom")
