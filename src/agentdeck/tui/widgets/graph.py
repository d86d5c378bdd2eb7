"""A small line graph drawn with plotext, coloured from the current theme.

Why plotext into a Static: braille line charts give four times the vertical resolution of
block sparklines, which is what makes an AIMD saw-tooth (limit cut by 30 %, then climbing
back) readable in ten rows. plotext draws outside Textual's CSS, so the colours it gets are
taken from the theme by name (``primary``, ``accent``, ``error``...), never hard-coded.
A chart is rebuilt only when its data, its size or the theme changed, and only while its
pane is on screen. plotext's coloured output is turned into Strips by ``ansi_to_strips``
(plotext only ever emits a handful of SGR codes), which is several times cheaper than
parsing it with ``Text.from_ansi`` and laying it out again, and keeps plotext's own
background colours out of the picture: the background is always the theme's.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Sequence

import plotext as plt  # imported with the console, not on the first visit to a graph pane (0.5 s)
from rich.color import Color
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.strip import Strip
from textual.widget import Widget

from agentdeck.tui.theme import theme_rgb


@dataclass(slots=True)
class Line:
    label: str
    xs: Sequence[float]
    ys: Sequence[float]
    color: str  # a theme colour name: primary, accent, success, warning, error, secondary, foreground


def downsample(xs: Sequence[float], ys: Sequence[float], n: int) -> tuple[list[float], list[float]]:
    """At most ``n`` points, keeping each bucket's maximum (a 1-second spike must stay visible)."""
    if len(xs) <= n or n <= 0:
        return list(xs), list(ys)
    step = len(xs) / n
    ox, oy = [], []
    for i in range(n):
        a, b = int(i * step), max(int((i + 1) * step), int(i * step) + 1)
        j = max(range(a, min(b, len(ys))), key=lambda k: ys[k])
        ox.append(xs[j])
        oy.append(ys[j])
    return ox, oy


_SGR = re.compile(r"\x1b\[([0-9;]*)m")


def ansi_to_strips(ansi: str, base: Style, width: int) -> list[Strip]:
    """One Strip per line of plotext output, ``width`` cells wide, on the ``base`` style.

    Honours what plotext emits for a chart: reset, bold, and truecolor or 256-colour
    foregrounds. Backgrounds are ignored on purpose (the theme's background shows through)."""
    styles: dict[tuple[str | None, bool], Style] = {}

    def style_of(fg: str | None, bold: bool) -> Style:
        st = styles.get((fg, bold))
        if st is None:
            st = base + Style(color=Color.parse(fg) if fg else None, bold=bold or None)
            styles[(fg, bold)] = st
        return st

    strips: list[Strip] = []
    for line in ansi.split("\n"):
        segs: list[Segment] = []
        fg: str | None = None
        bold = False
        pos = 0
        for m in _SGR.finditer(line):
            if m.start() > pos:
                segs.append(Segment(line[pos:m.start()], style_of(fg, bold)))
            pos = m.end()
            codes = m.group(1).split(";") if m.group(1) else ["0"]
            i = 0
            while i < len(codes):
                c = codes[i]
                if c in ("0", ""):
                    fg, bold = None, False
                elif c == "1":
                    bold = True
                elif c == "22":
                    bold = False
                elif c == "39":
                    fg = None
                elif c in ("38", "48") and i + 1 < len(codes):
                    n = 5 if codes[i + 1] == "2" else 3  # 38;2;r;g;b or 38;5;n
                    if c == "38":
                        parts = codes[i + 2:i + n]
                        fg = f"rgb({','.join(parts)})" if codes[i + 1] == "2" else f"color({parts[0]})"
                    i += n - 1
                i += 1
        if pos < len(line):
            segs.append(Segment(line[pos:], style_of(fg, bold)))
        strips.append(Strip(segs).adjust_cell_length(width, base))
    return strips


def nice_ceiling(v: float) -> float:
    """The next "round" number at or above ``v`` (1, 2, 2.5, 5 x 10^n), so axis labels stay short."""
    if v <= 0:
        return 1.0
    exp = math.floor(math.log10(v))
    for m in (1.0, 2.0, 2.5, 5.0, 10.0):
        if m * 10 ** exp >= v:
            return m * 10 ** exp
    return 10.0 ** (exp + 1)


def _num(v: float) -> str:
    if v >= 1000:
        return f"{v / 1000:g}k"
    return f"{v:g}" if v < 100 else f"{v:.0f}"


def _ago(s: float) -> str:
    if s <= 0:
        return "now"
    return f"-{s / 60:g}m" if s >= 60 else f"-{s:.0f}s"


class LineGraph(Widget):
    """Lines over the last ``window_s`` seconds (x = seconds before now), with optional event markers.

    The chart is turned into Strips once per redraw, so repainting the pane (a tab switch, a
    scroll) costs a list lookup per line instead of re-rendering thousands of styled cells."""

    DEFAULT_CSS = """
    LineGraph { height: 1fr; min-height: 6; width: 1fr; padding: 0 1 0 0; }
    """

    def __init__(self, title: str, *, window_s: int = 300, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._strips: list[Strip] = []
        self.title = title
        self.window_s = window_s
        self._lines: list[Line] = []
        self._marks: tuple[list[float], list[float]] = ([], [])
        self._mark_label = ""
        self._key: tuple[object, ...] | None = None
        self._version: object = None
        self._scheduled = False
        self.renders = 0

    def set_data(self, lines: list[Line], marks: tuple[list[float], list[float]] = ([], []), mark_label: str = "",
                 version: object = None) -> None:
        self._lines, self._marks, self._mark_label = lines, marks, mark_label
        self.redraw(version)

    def redraw(self, version: object = None) -> None:
        """Schedule a rebuild on this widget's own queue, so key presses can be handled between charts."""
        self._version = version
        if not self._scheduled:
            self._scheduled = True
            self.call_after_refresh(self._rebuild)

    def _rebuild(self) -> None:
        self._scheduled = False
        theme = self.app.current_theme
        key = (self._version, self.size.width, self.size.height, theme.name)
        if key == self._key or self.size.width < 12 or self.size.height < 4:
            return
        self._key = key
        width, base = self.size.width, self.rich_style
        console = self.app.console
        legend = [Strip(list(Segment.apply_style(line, base))).adjust_cell_length(width, base)
                  for line in console.render_lines(self._legend(), console.options.update_width(width), pad=False)]
        self._strips = legend + ansi_to_strips(self._render_chart(), base, width)
        self.refresh()

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        if y < len(self._strips):
            strip = self._strips[y]
            return strip if strip.cell_length == width else strip.adjust_cell_length(width, self.rich_style)
        return Strip.blank(width, self.rich_style)

    def on_resize(self) -> None:
        self._key = None
        self.redraw(self._version)

    def _legend(self) -> Text:
        theme = self.app.current_theme
        t = Text(self.title + "  ", style="bold")
        for ln in self._lines:
            r, g, b = theme_rgb(theme, ln.color)
            t.append("━━ ", style=f"rgb({r},{g},{b})")
            t.append(ln.label + "  ")
        if self._mark_label:
            r, g, b = theme_rgb(theme, "error")
            t.append("x ", style=f"bold rgb({r},{g},{b})")
            t.append(self._mark_label)
        return t

    def _render_chart(self) -> str:
        """The chart (without the legend line) as plotext's ANSI text."""
        theme = self.app.current_theme
        w, h = self.size.width - 1, self.size.height - 1
        fig = plt.figure
        fig.clear.all()
        fig.plot_size(w, h)
        fig.theme("colorless")
        fig.canvas("default")
        fg = plt.pixel(foreground=theme_rgb(theme, "foreground"), background="default")
        fig.axes(pixel=fg)
        fig.legend(active=False)
        top = 1.0
        for ln in self._lines:
            if not ln.xs:
                continue
            xs, ys = downsample(ln.xs, ln.ys, max(10, w))
            top = max(top, max(ys))
            mk = plt.marker("braille", pixel=plt.pixel(foreground=theme_rgb(theme, ln.color)))
            fig.draw(fig.signal(xs, ys, marker=mk).lines())
        mx, my = self._marks
        if mx:
            mk = plt.marker("x", pixel=plt.pixel(foreground=theme_rgb(theme, "error"), style="bold"))
            fig.draw(fig.signal(list(mx), list(my), marker=mk))
        win = self.window_s
        parts = 5 if w >= 48 else 2
        ticks = [-win + i * win / parts for i in range(parts + 1)]
        labels = [_ago(-t) for t in ticks]
        fig.ruler("x").ticks(ticks, labels)
        fig.ruler("x").lim(-win, 0)
        ytop = nice_ceiling(top * 1.1)
        steps = 2 if h < 10 else 4
        yt = [ytop * i / steps for i in range(steps + 1)]
        fig.ruler("y").ticks(yt, [_num(v) for v in yt])
        fig.ruler("y").lim(0, ytop)
        self.renders += 1
        return fig.build().string()
