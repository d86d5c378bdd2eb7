"""OpenTelemetry traces: a span per finished call, with the GenAI semantic-convention attributes.

Optional (``pip install "agentdeck[otel]"``). Spans are built from the bus's ``RequestCompleted``
events on the observers' thread, after the call has finished (its start is the event's time
minus its latency), and exported by the SDK's ``BatchSpanProcessor`` on its own thread: nothing
on the request path waits for a collector. The provider is private to agentdeck (the global one
is left alone), so an SDK script that embeds agentdeck keeps its own tracing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

from agentdeck import __version__
from agentdeck.bus import Event, RequestCompleted
from agentdeck.errors import ConfigError
from agentdeck.observe.calllog import Scrubber, error_code

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

# gen_ai.system / gen_ai.provider.name well-known values, by the caller's wire protocol.
_SYSTEM = {"openai": "openai", "anthropic": "anthropic", "gemini": "gcp.gemini"}
_OPERATION = {"/v1/chat/completions": "chat", "/v1/responses": "chat", "/v1/messages": "chat",
              "/v1/messages/count_tokens": "count_tokens"}


def _require_sdk() -> None:
    try:
        import opentelemetry.sdk.trace  # noqa: F401
    except ImportError:
        raise ConfigError('[otel] endpoint is set but OpenTelemetry is not installed: pip install "agentdeck[otel]"') from None


def otlp_exporter(endpoint: str, headers: dict[str, str]) -> "SpanExporter":
    """The OTLP/HTTP (protobuf) span exporter for ``endpoint``."""
    _require_sdk()
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError:
        raise ConfigError('[otel] endpoint is set but the OTLP exporter is not installed: pip install "agentdeck[otel]"') from None
    return OTLPSpanExporter(endpoint=endpoint, headers=dict(headers) or None)


def attributes(ev: RequestCompleted, scrub: Scrubber) -> dict[str, Any]:
    """The span's attributes: GenAI semantic conventions first, then agentdeck's own."""
    system = _SYSTEM.get(ev.protocol, ev.protocol)
    attrs: dict[str, Any] = {
        "gen_ai.operation.name": _OPERATION.get(ev.endpoint, "chat"),
        "gen_ai.system": system,
        "gen_ai.provider.name": system,
        "gen_ai.request.model": ev.model_requested,
        "gen_ai.response.model": ev.model,
        "gen_ai.usage.input_tokens": ev.input_tokens + ev.cache_read_tokens + ev.cache_write_tokens,
        "gen_ai.usage.output_tokens": ev.output_tokens,
        "gen_ai.usage.cache_read.input_tokens": ev.cache_read_tokens,
        "gen_ai.usage.cache_creation.input_tokens": ev.cache_write_tokens,
        "http.response.status_code": ev.status,
        "agentdeck.request_id": ev.id,
        "agentdeck.key": ev.key,
        "agentdeck.cost_usd": float(ev.cost_usd),
        "agentdeck.cost_estimated": ev.estimated,
        "agentdeck.tier": ev.tier or "none",
        "agentdeck.provider": ev.provider or "none",
        "agentdeck.endpoint": ev.endpoint,
        "agentdeck.stream": ev.stream,
        "agentdeck.attempts": ev.attempts,
    }
    if ev.session:
        attrs["agentdeck.session"] = ev.session
    if ev.rule:
        attrs["agentdeck.rule"] = ev.rule
    if ev.fallback_from:
        attrs["agentdeck.fallback_from"] = ev.fallback_from
    code = error_code(ev.error)
    if code or ev.status >= 400:
        attrs["error.type"] = code or str(ev.status)
    return attrs


class SpanSink:
    """A sink that turns each finished call into a span on a private TracerProvider."""

    def __init__(self, exporter: "SpanExporter", *, service_name: str = "agentdeck", secrets: Sequence[str] = (),
                 schedule_delay_ms: int = 2000) -> None:
        _require_sdk()
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        self.provider: TracerProvider = TracerProvider(
            resource=Resource.create({"service.name": service_name, "service.version": __version__}))
        self.provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=schedule_delay_ms))
        self.tracer = self.provider.get_tracer("agentdeck", __version__)
        self.scrub = Scrubber(secrets)
        self.spans = 0

    def handle(self, events: Sequence[Event], dropped: int) -> None:
        from opentelemetry.trace import SpanKind, Status, StatusCode

        for ev in events:
            if not isinstance(ev, RequestCompleted):
                continue
            end_ns = int(ev.ts * 1e9)
            start_ns = end_ns - int(ev.latency_ms * 1e6)
            attrs = attributes(ev, self.scrub)
            span = self.tracer.start_span(f"{attrs['gen_ai.operation.name']} {ev.model_requested}", kind=SpanKind.CLIENT,
                                          start_time=start_ns, attributes=attrs)
            if ev.status >= 400 or ev.error:
                span.set_status(Status(StatusCode.ERROR, self.scrub(ev.error) or f"HTTP {ev.status}"))
            span.end(end_time=end_ns)
            self.spans += 1

    def flush(self, timeout_ms: int = 5000) -> bool:
        return self.provider.force_flush(timeout_ms)

    def close(self) -> None:
        self.provider.shutdown()
