"""Percentiles for every benchmark, in one place, so two reports never disagree on what p99 means."""

from __future__ import annotations

import statistics
from collections.abc import Sequence


def percentile(xs: Sequence[float], q: float, *, empty: float = float("nan")) -> float:
    """The `q`-quantile (0 <= q <= 1) of `xs`, interpolated between samples (statistics.quantiles,
    inclusive method: p0 is the minimum, p100 the maximum); `empty` when there are no samples.
    """
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"percentile q must be between 0 and 1, got {q}")
    if not xs:
        return empty
    if len(xs) == 1 or q == 0.0:
        return min(xs)
    if q == 1.0:
        return max(xs)
    cuts = statistics.quantiles(xs, n=1000, method="inclusive")
    return cuts[max(0, min(len(cuts) - 1, round(q * 1000) - 1))]
