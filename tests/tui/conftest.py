"""Console tests: fixed time zone so clock columns in snapshots never depend on the machine."""

from __future__ import annotations

import os
import time
from typing import Iterator

import pytest


@pytest.fixture(autouse=True)
def _utc() -> Iterator[None]:
    old = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    yield
    if old is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = old
    time.tzset()
