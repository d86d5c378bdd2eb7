"""Fails only under a memory limit: it holds 700 MiB at once (untouched pages: cheap without a limit)."""


def test_loads_the_whole_export_at_once() -> None:
    export = bytes(700 * 1024 * 1024)
    assert len(export) == 700 * 1024 * 1024
