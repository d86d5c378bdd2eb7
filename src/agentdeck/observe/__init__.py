"""Getting the gateway into the on-call's stack: the call log and OpenTelemetry traces.

Both read the bus (``RequestCompleted``, stops and resumes, alerts) through one subscription
drained on a thread of their own, so the request path is untouched: a gateway with logs and
traces on does per call exactly what one without does (a deque append per subscriber).

``attach`` is the one entry point: ``agentdeck serve`` calls it with stderr, the console's
embedded gateway with a log file (never stdout: Textual owns the terminal).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable, Sequence, TextIO

from agentdeck.bus import Bus, Event
from agentdeck.config import Config
from agentdeck.observe.calllog import CALL_TYPES, CONTROL_TYPES, VERBOSE_TYPES, CallLog
from agentdeck.observe.drain import BusDrain, Sink

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter

    from agentdeck.observe.otel import SpanSink

__all__ = ["Observers", "attach", "log_types"]

QUIET, NORMAL, VERBOSE = -1, 0, 1


def log_types(verbosity: int) -> frozenset[str]:
    """Which events get a log line: stops/resumes/alerts always, calls unless quiet, limit moves when verbose."""
    out = set(CONTROL_TYPES)
    if verbosity >= NORMAL:
        out |= CALL_TYPES
    if verbosity >= VERBOSE:
        out |= VERBOSE_TYPES
    return frozenset(out)


class _Filtered:
    """A sink that sees only some event types (the log when quiet; traces want only calls)."""

    def __init__(self, sink: Sink, types: frozenset[str]) -> None:
        self.sink = sink
        self.types = types

    def handle(self, events: Sequence[Event], dropped: int) -> None:
        self.sink.handle([e for e in events if e.type in self.types], dropped)

    def close(self) -> None:
        self.sink.close()


class Observers:
    """What ``attach`` started; ``close()`` flushes the last lines and spans."""

    def __init__(self, drain: BusDrain | None, log: CallLog | None, spans: "SpanSink | None") -> None:
        self.drain = drain
        self.log = log
        self.spans = spans

    def flush(self) -> None:
        if self.drain is not None:
            self.drain.flush()

    def close(self) -> None:
        if self.drain is not None:
            self.drain.close()
            self.drain = None


def attach(bus: Bus, cfg: Config, *, log_stream: TextIO | None, log_format: str | None = None, verbosity: int = NORMAL,
           secrets: Iterable[str] = (), exporter: "SpanExporter | None" = None, close_stream: bool = False,
           interval_s: float = 0.2) -> Observers:
    """Start the call log on ``log_stream`` (None: no log) and, when ``[otel] endpoint`` is set or an
    ``exporter`` is given, the span export. Raises ConfigError when traces are asked for without the extra."""
    secrets = list(secrets)
    sinks: list[Sink] = []
    types: set[str] = set()
    log = None
    if log_stream is not None:
        log = CallLog(log_stream, fmt=log_format or cfg.gateway.log_format, secrets=secrets,
                      log_bodies=cfg.gateway.log_bodies, close_stream=close_stream)
        wanted = log_types(verbosity)
        sinks.append(_Filtered(log, wanted))
        types |= wanted
    spans = None
    if exporter is not None or cfg.otel.endpoint:
        from agentdeck.observe.otel import SpanSink, otlp_exporter

        spans = SpanSink(exporter if exporter is not None else otlp_exporter(cfg.otel.endpoint, cfg.otel.headers),
                         service_name=cfg.otel.service_name, secrets=secrets)
        sinks.append(_Filtered(spans, CALL_TYPES))
        types |= CALL_TYPES
    if not sinks:
        return Observers(None, None, None)
    return Observers(BusDrain(bus, sinks, types=types, interval_s=interval_s).start(), log, spans)
