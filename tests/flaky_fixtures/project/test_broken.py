"""A test that fails every run: broken, not flaky."""


def parse_port(text: str) -> int:
    return int(text)


def test_parse_port_accepts_empty_string() -> None:
    assert parse_port("") == 0
