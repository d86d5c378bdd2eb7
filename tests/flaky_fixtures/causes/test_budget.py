"""Timing, not randomness: a random input size makes the work run past its pytest-timeout budget."""

import random
import time

import pytest


def checksum(rows: int) -> int:
    total = 0
    for row in range(rows):
        end = time.perf_counter() + 0.02  # each row costs 20 ms of CPU
        while time.perf_counter() < end:
            total += row
    return total


@pytest.mark.timeout(0.2)
def test_checksum_of_a_random_batch() -> None:
    rows = 15 if random.random() < 0.25 else random.randint(1, 3)  # one batch in four is a big one
    assert checksum(rows) >= 0
