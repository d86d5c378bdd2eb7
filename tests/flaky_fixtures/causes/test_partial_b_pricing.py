"""Partially order-dependent: fails 1 run in 4 alone (a flaky price feed) and every run after the polluter.

After test_partial_a_setup.py::test_strict_rounding_mode, the decimal context traps Inexact,
so splitting a price three ways raises. A polluter search that only bisects tests which
always pass alone would never look here.
"""

import decimal
import random

_feed = random.SystemRandom()


def test_price_splits_three_ways() -> None:
    assert _feed.random() >= 0.25, "the price feed returned a stale quote"
    share = decimal.Decimal("10.00") / 3
    assert share > 3
