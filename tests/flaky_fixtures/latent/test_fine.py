"""Tests that never fail, under any stress."""


def test_upper() -> None:
    assert "a".upper() == "A"


def test_join() -> None:
    assert ",".join(["a", "b"]) == "a,b"


def test_sorted() -> None:
    assert sorted([3, 1, 2]) == [1, 2, 3]
