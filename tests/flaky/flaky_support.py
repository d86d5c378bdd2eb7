"""Helpers shared by the flaky tests (a unique module name: every test dir has a conftest.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent.parent / "flaky_fixtures"
# The fixture projects use no third-party pytest plugins; not auto-loading the ones installed
# here (textual snapshots, benchmark, ...) saves ~3 s of start-up per pytest process.
FAST = {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}


@contextmanager
def fast_pytest() -> Iterator[None]:
    old = {k: os.environ.get(k) for k in FAST}
    os.environ.update(FAST)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
