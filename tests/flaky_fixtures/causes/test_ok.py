"""Tests that never fail, including ones that sleep, write in tmp_path and await."""

import asyncio
import time


def test_sum() -> None:
    assert sum(range(10)) == 45


def test_write_in_tmp_path(tmp_path) -> None:
    (tmp_path / "a.txt").write_text("x")
    assert (tmp_path / "a.txt").read_text() == "x"


def test_awaits_with_room() -> None:
    async def quick() -> int:
        await asyncio.sleep(0.001)
        return 1

    assert asyncio.run(asyncio.wait_for(quick(), timeout=5)) == 1


def test_sleeps_without_a_deadline() -> None:
    started = time.monotonic()
    time.sleep(0.001)
    assert time.monotonic() >= started
