"""A test that never returns (the runner must kill it and say so) and one that runs after it."""

import threading


def test_waits_forever() -> None:
    threading.Event().wait()


def test_runs_after_the_hang() -> None:
    assert True
