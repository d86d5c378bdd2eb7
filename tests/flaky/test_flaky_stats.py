"""The statistics behind the verdicts: intervals, the exact test, the clean-run rule, the seed replay."""

from __future__ import annotations

import math

from agentdeck.flaky.experiments import seed_p_value
from agentdeck.flaky.stats import fisher_greater, runs_needed, wilson


def test_runs_needed_matches_the_research_figures() -> None:
    assert runs_needed(0.05) == 59 and runs_needed(0.01) == 299
    assert runs_needed(0.14) == math.ceil(math.log(0.05) / math.log(0.86))
    assert runs_needed(1.0) == 1 and runs_needed(0.0) == 0


def test_wilson_interval_is_sane_at_the_edges() -> None:
    lo, hi = wilson(0, 50)
    assert lo == 0.0 and 0.05 < hi < 0.08
    lo, hi = wilson(50, 50)
    assert hi == 1.0 and 0.92 < lo < 0.95
    lo, hi = wilson(7, 50)
    assert lo < 0.14 < hi


def test_fisher_exact_one_sided() -> None:
    # A textbook table: 8/10 vs 2/10 -> p ~ 0.0115 (one-sided).
    assert abs(fisher_greater(8, 10, 2, 10) - 0.011477) < 1e-4
    assert fisher_greater(0, 10, 5, 10) == 1.0
    assert fisher_greater(12, 16, 0, 21) < 1e-5


def test_seed_replay_is_conservative() -> None:
    # A test failing 1 in 4 whose failing seed fails 8 of 8 replays: the seed decides.
    assert seed_p_value(8, 4, 0, *wilson(20, 80)) < 1e-3
    # A test failing 3 in 4: 8 failing replays alone are expected by chance...
    assert seed_p_value(8, 0, 0, *wilson(60, 80)) > 0.01
    # ...but not together with a passing seed that passed every replay.
    assert seed_p_value(8, 4, 0, *wilson(60, 80)) < 0.01
