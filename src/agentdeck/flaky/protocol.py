"""The wire format between the flaky runner and its pytest plugin.

Stdlib only, because this module is imported inside the user's pytest process (possibly a
different interpreter than agentdeck's own). Records are JSON lines written with a single
``os.write`` of at most ``MAX_RECORD`` bytes: many forked children share one pipe, and
POSIX only guarantees that writes up to PIPE_BUF (4096 on Linux) are not interleaved.
"""

from __future__ import annotations

import json
import os
import signal
from typing import Any

ENV_FDS = "AGENTDECK_FLAKY_FDS"  # "<command fd>,<event fd>" (command fd is -1 for a one-job process)
ENV_TMP = "AGENTDECK_FLAKY_TMP"  # a directory the runner owns; children put basetemp and sandboxes there
MAX_RECORD = 3900

FAIL_OUTCOMES = frozenset({"failed", "error", "timeout", "crashed"})
PASS_OUTCOMES = frozenset({"passed", "xfailed", "xpassed"})
SKIP_OUTCOMES = frozenset({"skipped"})

# Plugins that reorder or retry tests hide exactly what the runner measures.
BLOCKED_PLUGINS = ("randomly", "rerunfailures", "flaky", "xdist")


def derive_seed(job_seed: int, pos: int, copy: int = 0) -> int:
    """The `random` seed a test gets at position ``pos`` of a run (copy ``copy`` of a parallel run).

    Recomputable by the runner for replays; distinct for every copy, so copies started
    together do not make the same draws.
    """
    return (job_seed * 1_000_003 + copy * 2_654_435_761 + (pos + 1) * 0x9E3779B1) % (2**32)


def encode(obj: dict[str, Any]) -> bytes:
    data = (json.dumps(obj, separators=(",", ":"), default=str) + "\n").encode()
    if len(data) <= MAX_RECORD:
        return data
    # Too big for one atomic pipe write: shed the free-text fields first.
    slim = dict(obj)
    for key in ("m", "b", "ch", "changes", "items"):
        if key in slim:
            value = slim[key]
            if isinstance(value, str):
                slim[key] = value[:300]
            elif isinstance(value, list):
                slim[key] = value[:3]
    data = (json.dumps(slim, separators=(",", ":"), default=str) + "\n").encode()
    if len(data) <= MAX_RECORD:
        return data
    for key in ("m", "b", "ch", "changes"):
        slim.pop(key, None)
    return (json.dumps(slim, separators=(",", ":"), default=str) + "\n").encode()


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def write_record(fd: int, obj: dict[str, Any]) -> None:
    write_all(fd, encode(obj))


def write_big(fd: int, obj: dict[str, Any]) -> None:
    """A message only one process writes (the collected list): no size limit, not atomic."""
    write_all(fd, (json.dumps(obj, separators=(",", ":"), default=str) + "\n").encode())


def kill_group(pid: int) -> None:
    """SIGKILL a child's process group (a hung test may have spawned helpers), else the child alone."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
