"""The polluter: turns on a decimal trap in the thread's context and never restores it."""

import decimal


def test_strict_rounding_mode() -> None:
    decimal.getcontext().traps[decimal.Inexact] = True
    assert decimal.Decimal("1.5") * 2 == 3
