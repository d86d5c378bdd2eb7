"""The cluster's processes: one row per gateway process that heartbeats to the cluster's Redis.

Why a Static that renders a Rich table rather than a DataTable: the rows change wholesale
once a second (in flight, req/s, last seen) and are few; rebuilding one renderable per
tick is cheaper than keeping cells of a DataTable in step, and needs no focus or cursor.
Shown only in cluster mode: a local gateway's ticks carry no cluster section.
"""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from agentdeck.tui.model import ClusterModel, fmt_duration

WIDE_FROM = 100


class ClusterProcesses(Static):
    COMPONENT_CLASSES = {"procs--title", "procs--dim", "procs--stopped", "procs--this", "procs--down"}
    DEFAULT_CSS = """
    ClusterProcesses { height: auto; max-height: 14; padding: 0 1; border-bottom: solid $panel; }
    ClusterProcesses > .procs--title { color: $primary; text-style: bold; }
    ClusterProcesses > .procs--dim { color: $foreground-muted; }
    ClusterProcesses > .procs--stopped { color: $error; text-style: bold; }
    ClusterProcesses > .procs--this { color: $foreground; text-style: bold; }
    ClusterProcesses > .procs--down { color: $error; text-style: bold; }
    """

    def build(self, m: ClusterModel) -> Group:
        st = self.get_component_rich_style
        n = len(m.lines)
        title = Text()
        title.append(f"cluster '{m.name}' ", st("procs--title"))
        title.append(f"on {m.redis}: {n} process{'es' if n != 1 else ''}, {m.rps:.1f} req/s, {m.in_flight} in flight",
                     st("procs--dim"))
        if not m.up:
            title.append(f"  Redis not answering ({m.error or 'unknown'}): rows from the last read", st("procs--down"))
        wide = (self.size.width or 140) >= WIDE_FROM  # narrow terminals lose the address and uptime first
        table = Table(box=None, padding=(0, 2 if wide else 1), show_edge=False, header_style=st("procs--dim"),
                      expand=False)
        cols = [("process", "left"), ("address", "left"), ("state", "left"), ("in flight", "right"), ("req/s", "right"),
                ("up", "right"), ("last seen", "right")]
        keep = [c for c in cols if wide or c[0] not in ("address", "up")]
        for col, just in keep:
            table.add_column(col, justify=just, no_wrap=True, overflow="ellipsis")  # type: ignore[arg-type]
        for p in m.lines:
            style = st("procs--stopped") if p.stopped else st("procs--this") if p.this else None
            cells = {"process": ("● " if p.this else "  ") + p.who, "address": p.address,
                     "state": "STOPPED" if p.stopped else "live", "in flight": str(p.in_flight), "req/s": f"{p.rps:.1f}",
                     "up": fmt_duration(p.up_s), "last seen": f"{p.seen_s:.1f}s ago"}
            table.add_row(*(cells[c] for c, _ in keep), style=style)
        return Group(title, table)  # the headline apart: a table's title would wrap at the table's width

    def show(self, m: ClusterModel) -> None:
        self.update(self.build(m), layout=True)
