"""The few statistics the runner needs, exact and dependency-free."""

from __future__ import annotations

import math

ALPHA = 0.01  # several perturbations are tried per test: a strict threshold keeps guesses out


def wilson(failures: int, runs: int, z: float = 1.959964) -> tuple[float, float]:
    """95% Wilson score interval for a failure rate (sane at 0 and n, unlike the normal approximation)."""
    if runs <= 0:
        return (0.0, 1.0)
    p = failures / runs
    denom = 1 + z * z / runs
    centre = (p + z * z / (2 * runs)) / denom
    half = z * math.sqrt(p * (1 - p) / runs + z * z / (4 * runs * runs)) / denom
    lo = 0.0 if failures == 0 else max(0.0, centre - half)
    hi = 1.0 if failures == runs else min(1.0, centre + half)
    return (lo, hi)


def fisher_greater(treated_fail: int, treated_runs: int, control_fail: int, control_runs: int) -> float:
    """One-sided Fisher exact test: P(a failure count this high under the perturbation by chance)."""
    a, n1, c, n2 = treated_fail, treated_runs, control_fail, control_runs
    if n1 <= 0 or n2 <= 0:
        return 1.0
    k = a + c
    n = n1 + n2
    total = math.comb(n, k)
    p = 0.0
    for x in range(a, min(k, n1) + 1):
        p += math.comb(n1, x) * math.comb(n2, k - x)
    return min(1.0, p / total)


def fisher_less(treated_fail: int, treated_runs: int, control_fail: int, control_runs: int) -> float:
    """One-sided Fisher exact test for a failure count this *low* under the perturbation."""
    return fisher_greater(treated_runs - treated_fail, treated_runs, control_runs - control_fail, control_runs)


def runs_needed(p: float, confidence: float = 0.95) -> int:
    """Clean runs that make a remaining failure rate of ``p`` unlikely: ln(1-conf)/ln(1-p) (59 for 5%)."""
    if p <= 0:
        return 0
    if p >= 1:
        return 1
    return math.ceil(math.log(1 - confidence) / math.log(1 - p))


def _log_beta(a: float, b: float) -> float:
    return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)


def rate_likelihood_ratio(treated_fail: int, treated_runs: int, control_fail: int, control_runs: int) -> float:
    """How much more likely the counts are if the change moved the failure rate than if it did not.

    A Bayes factor with uniform priors on the rates: two rates (treated, control) against one
    shared rate. Direction matters for a cause: when the treated rate is not higher, the ratio
    is turned into evidence *against* (at most 1).
    """
    a, n1, c, n2 = treated_fail, treated_runs, control_fail, control_runs
    if n1 <= 0 or n2 <= 0:
        return 1.0
    log_bf = (
        _log_beta(a + 1, n1 - a + 1) + _log_beta(c + 1, n2 - c + 1) - _log_beta(a + c + 1, n1 + n2 - a - c + 1)
    )
    bf = math.exp(max(-700.0, min(700.0, log_bf)))
    if a / n1 <= c / n2:
        return min(1.0, 1.0 / bf) if bf > 0 else 1.0
    return bf
