"""The one percentile every benchmark report uses."""

from __future__ import annotations

import math

import pytest

from agentdeck.bench.stats import percentile


def test_percentile_interpolates_and_spans_min_to_max() -> None:
    xs = [float(x) for x in range(1, 101)]
    assert percentile(xs, 0.5) == pytest.approx(50.5)
    assert percentile(xs, 0.99) == pytest.approx(99.01)
    assert percentile(xs, 0.0) == 1.0 and percentile(xs, 1.0) == 100.0
    assert percentile([3.0, 1.0, 2.0], 0.5) == 2.0


def test_percentile_of_few_or_no_samples() -> None:
    assert percentile([7.0], 0.99) == 7.0
    assert math.isnan(percentile([], 0.5))
    assert percentile([], 0.5, empty=0.0) == 0.0
    with pytest.raises(ValueError, match="between 0 and 1"):
        percentile([1.0], 99)


def test_sse_bench_plumbing_decodes_every_framing() -> None:
    from agentdeck.bench.sse import anthropic_stream, format_sse_report, openai_stream, run_sse_bench
    from agentdeck.wire.sse import SSEDecoder

    for parts in (openai_stream(5, crlf=True), anthropic_stream(5, crlf=False)):
        events = SSEDecoder().feed(b"".join(parts))
        assert len(events) == len(parts) and all(e.data for e in events)
    rows = run_sse_bench(events=20)
    assert {(r["stream"], r["framing"], r["chunks"]) for r in rows} == {
        (s, f, c) for s in ("openai", "anthropic") for f in ("LF", "CRLF") for c in ("per event", "16 KiB")}
    assert "M events/s" in format_sse_report(rows)
