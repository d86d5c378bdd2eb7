"""Timing perturbations that reach every clock a test waits on, in every thread.

Why not a fake clock: a test's work and its deadline read the same clock, so slowing the
clock moves both and the race stays as it was. What separates them is *waiting*: the work
waits (``time.sleep``, ``asyncio.sleep``, a timed ``Event``/``Condition``/``Queue`` wait),
the deadline is a fixed budget (``asyncio.wait_for``'s timeout, an elapsed-time assert, a
``pytest-timeout`` budget). So the runner stretches or shrinks the waits and leaves the
deadlines alone, and scales ``pytest-timeout`` budgets on their own (in the plugin):

- ``stretch`` (factor 3, +20 ms): a test racing its own sleeps against a deadline starts
  failing;
- ``shrink`` (factor 0.05, no extra) with budgets lifted: replayed on the seed of a failing
  run, a test whose seed only decides *how long* the work takes starts passing, which
  names timing, not randomness, as the cause.

Stdlib only: this runs inside the user's pytest, in a process that is never reused.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any


def _scale(seconds: float, factor: float, extra_s: float) -> float:
    return seconds * factor + extra_s if seconds > 0 else seconds


def apply_time_scale(factor: float, extra_s: float, project_root: str | None = None) -> list[str]:
    """Scale every sleep and timed wait in every thread; return what was patched (for the evidence).

    ``project_root``: also rebind ``from time import sleep`` / ``from asyncio import sleep``
    names in the project's own modules (bound before the patch, at collection).
    """
    original_sleep = time.sleep
    original_async_sleep = asyncio.sleep
    original_wait = threading.Condition.wait

    def sleep(seconds: float) -> None:
        original_sleep(_scale(seconds, factor, extra_s))

    async def async_sleep(delay: float, result: Any = None) -> Any:
        return await original_async_sleep(_scale(delay, factor, extra_s), result)

    def wait(self: threading.Condition, timeout: float | None = None) -> bool:
        return original_wait(self, None if timeout is None else _scale(timeout, factor, extra_s))

    time.sleep = sleep  # type: ignore[assignment]
    asyncio.sleep = async_sleep  # type: ignore[assignment]
    asyncio.tasks.sleep = async_sleep  # type: ignore[attr-defined]
    # Event.wait, Queue.get(timeout=), Barrier.wait all wait on a Condition.
    threading.Condition.wait = wait  # type: ignore[method-assign]
    patched = ["time.sleep", "asyncio.sleep", "threading.Condition.wait"]
    if project_root:
        rebound = _rebind(project_root, {id(original_sleep): sleep, id(original_async_sleep): async_sleep})
        patched += rebound
    return patched


def _rebind(root: str, replacements: dict[int, Callable[..., Any]]) -> list[str]:
    """Replace names bound to the original functions in the project's modules."""
    root = os.path.realpath(root) + os.sep
    done = []
    for name, mod in list(sys.modules.items()):
        path = getattr(mod, "__file__", None)
        if not path or not os.path.realpath(path).startswith(root):
            continue
        try:
            items = list(vars(mod).items())
        except TypeError:
            continue
        for attr, value in items:
            new = replacements.get(id(value))
            if new is not None:
                setattr(mod, attr, new)
                done.append(f"{name}.{attr}")
    return done


def scaled_budget(current: float | None, factor: float) -> float | None:
    """A pytest-timeout budget scaled by ``factor`` (None or 0: no budget, nothing to scale)."""
    if current is None or current <= 0:
        return None
    return max(0.001, current * factor)
