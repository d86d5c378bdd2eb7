"""Flaky by unseeded randomness: the jitter makes the delay exceed the bound one time in four."""

import random


def backoff_delay(attempt: int) -> float:
    """Exponential backoff with jitter (the code under test)."""
    return min(30.0, 0.5 * 2**attempt) * random.uniform(0.5, 1.5)


def test_backoff_stays_under_five_seconds() -> None:
    assert backoff_delay(3) <= 5.0
