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
