"""Who is serving: one row per live gateway process, and the cluster as one process sees it.

Why plain dataclasses of their own: the status document, the stats tick (and so the
console, embedded or attached over SSE) and ``agentdeck status`` all show the same rows;
they travel as dicts (``to_dict``), and nothing here needs Redis, so the local backend and
the console import it without loading the cluster modules.
"""

from __future__ import annotations

import os
import socket
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping


@dataclass(slots=True)
class ProcessSample:
    """What a gateway process says about itself at one heartbeat (read on a timer, never per call)."""

    in_flight: int = 0
    rps: float = 0.0
    stopped: bool = False
    address: str = ""
    started: float = 0.0


@dataclass(slots=True)
class ProcessRow:
    """One gateway process as the cluster sees it; ``last_seen`` is on the cluster's clock (Redis ``TIME``)."""

    id: str
    host: str
    pid: int
    address: str
    started: float
    in_flight: int
    rps: float
    stopped: bool
    last_seen: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "ProcessRow":
        """A row read back from Redis or a tick; a field it lacks gets a neutral value, never a KeyError."""
        return cls(id=str(d.get("id") or ""), host=str(d.get("host") or ""), pid=int(d.get("pid") or 0),
                   address=str(d.get("address") or ""), started=float(d.get("started") or 0.0),
                   in_flight=int(d.get("in_flight") or 0), rps=float(d.get("rps") or 0.0),
                   stopped=bool(d.get("stopped")), last_seen=float(d.get("last_seen") or 0.0))


@dataclass(slots=True)
class ClusterSnapshot:
    """The cluster at one read: its live processes, its spend, its shared limits.

    ``up`` is False when the last read failed (Redis down): the rows are then those of the
    last read that worked, and ``error`` says why. ``spend`` holds the cluster's totals
    (hour, day, reserved, open reservations), ``keys`` each key's day spend and holds,
    ``limits`` each provider's shared ``rps_limit``, ``slots_limit`` and ``cluster_in_flight``.
    """

    backend: str
    name: str
    redis: str
    this: str
    read_at: float
    up: bool = True
    error: str | None = None
    processes: list[ProcessRow] = field(default_factory=list)
    spend: dict[str, Any] | None = None
    keys: dict[str, dict[str, float]] = field(default_factory=dict)
    limits: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def in_flight(self) -> int:
        return sum(p.in_flight for p in self.processes)

    @property
    def rps(self) -> float:
        return round(sum(p.rps for p in self.processes), 1)

    def to_dict(self) -> dict[str, Any]:
        """The ``cluster`` section of the status document and of the stats tick."""
        return {"backend": self.backend, "name": self.name, "redis": self.redis, "this": self.this,
                "read_at": self.read_at, "up": self.up, "error": self.error,
                "processes": [p.to_dict() for p in self.processes], "in_flight": self.in_flight, "rps": self.rps}


def this_host() -> str:
    return socket.gethostname()


def this_pid() -> int:
    return os.getpid()


def rate_last_second(times: Any, now: float) -> float:
    """Calls finished in the last second, from a deque of completion times (oldest first), without changing it."""
    n = 0
    for t in reversed(times):
        if t < now - 1.0:
            break
        n += 1
    return float(n)


def overlay_limits(snapshots: dict[str, dict[str, Any]], limits: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each provider's own snapshot with the shared numbers of the last cluster read over it.

    ``in_flight`` stays this process's (what ``/metrics`` of this process counts);
    ``cluster_in_flight`` is the slots held across the cluster, against the shared ``slots_limit``.
    """
    for name, shared in limits.items():
        snap = snapshots.get(name)
        if snap is None:
            continue
        for k in ("rps_limit", "slots_limit", "cluster_in_flight"):
            if shared.get(k) is not None:
                snap[k] = shared[k]
        snap["shared"] = True
    return snapshots


__all__ = ["ClusterSnapshot", "ProcessRow", "ProcessSample", "overlay_limits", "rate_last_second"]
