"""Three tests with a known answer, small enough for quick runs: stable, broken, flaky by randomness."""

import random


def test_ok() -> None:
    assert "flaky".upper() == "FLAKY"


def test_broken() -> None:
    assert 1 + 1 == 3, "always broken"


def test_dice() -> None:
    assert random.random() < 0.7, "rolled too high"
