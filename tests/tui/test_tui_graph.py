"""The line graph's pieces that are plain functions: plotext's output into Strips, and the axes."""

from __future__ import annotations

import plotext as plt
from rich.style import Style

from agentdeck.tui.widgets.graph import ansi_to_strips, downsample, nice_ceiling

BASE = Style(color="#d0d0d0", bgcolor="#101010")


def test_ansi_to_strips_keeps_plotext_colours_and_drops_its_backgrounds() -> None:
    fig = plt.figure
    fig.clear.all()
    fig.plot_size(30, 6)
    fig.theme("colorless")
    fig.axes(pixel=plt.pixel(foreground=(200, 200, 200), background="default"))
    fig.draw(fig.signal([0, 1, 2, 3], [0, 3, 1, 2], marker=plt.marker("braille", pixel=plt.pixel(foreground=(90, 170, 255)))).lines())
    ansi = fig.build().string()
    strips = ansi_to_strips(ansi, BASE, 32)
    plain = [ln for ln in fig.build().string(colorless=True).split("\n")]
    assert [s.text.rstrip() for s in strips] == [p.rstrip() for p in plain]
    assert all(s.cell_length == 32 for s in strips)
    styles = [seg.style for s in strips for seg in s if seg.text.strip()]
    assert all(st is not None and st.bgcolor == BASE.bgcolor for st in styles), "plotext's background must not show"
    colours = {st.color.triplet for st in styles if st is not None and st.color is not None and st.color.triplet}
    assert (90, 170, 255) in {tuple(c) for c in colours} and (200, 200, 200) in {tuple(c) for c in colours}


def test_ansi_to_strips_reads_bold_256_colours_and_resets() -> None:
    strips = ansi_to_strips("a\x1b[1;38;5;196mx\x1b[0mb", BASE, 3)
    a, x, b = list(strips[0])
    assert a.style == BASE and b.style == BASE
    assert x.style is not None and x.style.bold and x.style.color is not None and x.style.color.number == 196


def test_downsample_keeps_each_buckets_peak_and_nice_ceiling_rounds_up() -> None:
    xs = list(range(100))
    ys = [0.0] * 100
    ys[37] = 9.0
    ox, oy = downsample(xs, ys, 10)
    assert len(ox) == 10 and 9.0 in oy and 37 in ox
    assert [nice_ceiling(v) for v in (0, 0.7, 3.1, 42, 240, 1001)] == [1.0, 1.0, 5.0, 50.0, 250.0, 2000.0]
