"""The cluster part of `agentdeck status`: one line for the cluster, one row per gateway process.

Why its own module: the rows come from the ``cluster`` section of ``/admin/status``, which
only a gateway in cluster mode has; a local gateway's status is shown as it always was.
Any process of a cluster answers with every live process (they heartbeat to one Redis),
so `status --url` pointed at any of them shows the whole cluster.
"""

from __future__ import annotations

from typing import Any


def _dur(seconds: float) -> str:
    s = int(max(0.0, seconds))
    h, rem = divmod(s, 3600)
    return f"{h}h{rem // 60:02d}m" if h else f"{rem // 60}m{rem % 60:02d}s"


def _where(p: dict[str, Any]) -> str:
    return f"{p.get('host') or '?'}:{p.get('pid') or '?'}"


def headline(c: dict[str, Any], label: str = "cluster ") -> str:
    """``cluster 't' on 127.0.0.1:6379: 3 processes, 12 in flight, 45.0 req/s`` (or why Redis is not answering)."""
    procs = c.get("processes") or []
    n = len(procs)
    head = f"{label}'{c.get('name')}' on {c.get('redis')}: {n} process{'es' if n != 1 else ''}, " \
           f"{int(c.get('in_flight') or 0)} in flight, {float(c.get('rps') or 0.0):.1f} req/s"
    if not c.get("up", True):
        head += f"; REDIS NOT ANSWERING ({c.get('error') or 'unknown error'}): rows are from the last read, " \
                "spend is this process's own"
    return head


def row_cells(p: dict[str, Any], read_at: float) -> tuple[str, ...]:
    """process, address, state, in flight, req/s, up, last seen (one process's row)."""
    started = float(p.get("started") or 0.0)
    up = _dur(read_at - started) if started else "-"
    age = float(p.get("age_s") or 0.0)
    return (_where(p) + (" *" if p.get("this") else ""), str(p.get("address") or "-"),
            "STOPPED" if p.get("stopped") else "live", str(int(p.get("in_flight") or 0)),
            f"{float(p.get('rps') or 0.0):.1f}", up, f"{age:.1f}s ago")


COLUMNS = ("process", "address", "state", "in flight", "req/s", "up", "last seen")


def render_lines(c: dict[str, Any]) -> list[str]:
    """Plain text: the headline, then an aligned table of the processes (``*`` marks the one that answered)."""
    read_at = float(c.get("read_at") or 0.0)
    rows = [COLUMNS] + [row_cells(p, read_at) for p in c.get("processes") or []]
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    right = {3, 4, 5}
    out = [f"{'cluster':<8} {headline(c, '')}"]
    for r in rows:
        cells = [r[i].rjust(widths[i]) if i in right else r[i].ljust(widths[i]) for i in range(len(COLUMNS))]
        out.append(f"{'':<8} " + "  ".join(cells).rstrip())
    return out


def render_rich(c: dict[str, Any]) -> list[Any]:
    """The terminal view: the headline, then a table of the processes."""
    from rich.table import Table
    from rich.text import Text

    read_at = float(c.get("read_at") or 0.0)
    parts: list[Any] = [Text(headline(c), style="bold" if c.get("up", True) else "bold red")]
    table = Table(box=None, padding=(0, 2), show_edge=False, header_style="bold")
    for i, col in enumerate(COLUMNS):
        table.add_column(col, justify="right" if i in (3, 4, 5) else "left")
    for p in c.get("processes") or []:
        cells = row_cells(p, read_at)
        style = "red" if p.get("stopped") else ("bold" if p.get("this") else "")
        table.add_row(*cells, style=style)
    parts.append(table)
    return parts


__all__ = ["headline", "render_lines", "render_rich", "row_cells"]
