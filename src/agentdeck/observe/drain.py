"""A bus subscriber on a thread of its own, for sinks that write somewhere (a log stream, an exporter).

Why a thread and not a task on the gateway's loop: a sink writes to a pipe or a file, and a
pipe whose reader is slow blocks the writer; on the gateway's loop that would stall every call
in flight. Here the request path does only what ``Bus.publish`` always does (a deque append);
this thread wakes every ``interval_s``, takes what queued, and hands it to the sinks. The
subscription is lossless up to its bound; past it events are counted, never waited for.
"""

from __future__ import annotations

import sys
import threading
from typing import Iterable, Protocol, Sequence

from agentdeck.bus import Bus, Event, Policy


class Sink(Protocol):
    """Something that takes batches of events, off the request path."""

    def handle(self, events: Sequence[Event], dropped: int) -> None:
        """Take one batch; ``dropped`` is how many events were lost since the last batch."""

    def close(self) -> None:
        """Flush and release; called once, after the last batch."""


class BusDrain:
    """Drains one bus subscription into ``sinks`` from a daemon thread."""

    def __init__(self, bus: Bus, sinks: Iterable[Sink], *, types: set[str], name: str = "observe",
                 interval_s: float = 0.2, maxlen: int = 100_000) -> None:
        self.sinks = list(sinks)
        self.interval_s = interval_s
        self._sub = bus.subscribe(name, maxlen=maxlen, policy=Policy.LOSSLESS, types=types)
        self._seen_dropped = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"agentdeck-{name}", daemon=True)
        self._lock = threading.Lock()

    def start(self) -> "BusDrain":
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.flush()

    def flush(self) -> int:
        """Hand whatever is queued to the sinks now (also from another thread). Returns how many events."""
        with self._lock:
            events = self._sub.drain()
            dropped = self._sub.dropped - self._seen_dropped
            self._seen_dropped = self._sub.dropped
            if not events and not dropped:
                return 0
            for sink in self.sinks:
                try:
                    sink.handle(events, dropped)
                except Exception as e:  # a broken sink must not take the others (or the gateway) down
                    print(f"agentdeck: {type(sink).__name__} failed: {e!r}", file=sys.stderr)
            return len(events)

    def close(self, timeout: float = 5.0) -> None:
        """Stop the thread, hand over the last events, close the sinks."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        self.flush()
        self._sub.close()
        for sink in self.sinks:
            try:
                sink.close()
            except Exception as e:
                print(f"agentdeck: closing {type(sink).__name__} failed: {e!r}", file=sys.stderr)
