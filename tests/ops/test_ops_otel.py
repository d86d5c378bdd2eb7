"""OpenTelemetry: a span per call with the GenAI semantic-convention attributes, exported by a batch span
processor off the request path; checked with the SDK's in-memory exporter and, through `agentdeck serve`
with `[otel] endpoint`, with a real OTLP/HTTP receiver on loopback."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest
from deck_support import otlp_receiver
from ops_support import KEY_DEV, SECRETS, Served, chat, message, wait_for, write_config

pytest.importorskip("opentelemetry.sdk.trace")

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402
from opentelemetry.trace import SpanKind, StatusCode  # noqa: E402

from agentdeck.config import load_config  # noqa: E402
from agentdeck.gateway.server import GatewayThread  # noqa: E402
from agentdeck.observe import attach  # noqa: E402


def test_a_span_per_call_with_genai_attributes(config: Path) -> None:
    exporter = InMemorySpanExporter()
    with GatewayThread(load_config(config), port=0) as gt:
        obs = attach(gt.bus, gt.cfg, log_stream=None, exporter=exporter, secrets=gt.gateway.secrets())
        ok = chat(gt.url)
        msg = message(gt.url, model="fast")
        bad = chat(gt.url, model="llama-99")
        assert ok.status_code == 200 and msg.content and bad.status_code == 404
        assert obs.spans is not None
        wait_for(lambda: obs.flush() or obs.spans.spans >= 3)  # flushing hands the queued calls to the sink
        obs.close()  # shuts the provider down: the batch processor exports what it holds
    spans = {s.attributes["gen_ai.request.model"]: s for s in exporter.get_finished_spans()}
    assert set(spans) == {"gpt-4o-mini", "fast", "llama-99"}
    s = spans["gpt-4o-mini"]
    a = s.attributes
    assert s.name == "chat gpt-4o-mini" and s.kind is SpanKind.CLIENT
    assert a["gen_ai.system"] == "openai" and a["gen_ai.operation.name"] == "chat"
    assert a["gen_ai.response.model"] == "gpt-4o-mini"
    assert a["gen_ai.usage.input_tokens"] > 0 and a["gen_ai.usage.output_tokens"] > 0
    assert a["agentdeck.cost_usd"] > 0 and a["agentdeck.key"] == "dev" and a["agentdeck.tier"]
    assert a["agentdeck.request_id"] == ok.headers["x-agentdeck-request-id"]
    assert s.end_time > s.start_time and s.status.status_code is StatusCode.UNSET
    f = spans["fast"].attributes
    assert f["gen_ai.system"] == "anthropic" and f["agentdeck.tier"] == "fast"
    assert str(f["gen_ai.response.model"]).startswith("claude-")
    err = spans["llama-99"]
    assert err.status.status_code is StatusCode.ERROR and err.attributes["error.type"]
    assert err.attributes["http.response.status_code"] == 404
    assert s.resource.attributes["service.name"] == "agentdeck"
    for span in spans.values():
        assert not any(secret in str(v) for v in span.attributes.values() for secret in SECRETS)


@pytest.fixture
def collector() -> Iterator[tuple[str, list[bytes]]]:
    with otlp_receiver() as r:
        yield r


def test_serve_exports_spans_to_the_configured_endpoint(tmp_path: Path, env: dict[str, str], upstream: str,
                                                         collector: tuple[str, list[bytes]]) -> None:
    pytest.importorskip("opentelemetry.exporter.otlp.proto.http")
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    endpoint, received = collector
    cfg = write_config(tmp_path / "otel.toml", upstream, tmp_path / "data-otel",
                       extra=f'\n[otel]\nendpoint = "{endpoint}"\nservice_name = "deck-under-test"\n')
    s = Served(["--config", str(cfg), "--quiet"], env, tmp_path / "logs", name="otel")
    try:
        assert chat(s.url).status_code == 200
    finally:
        assert s.stop() == 0  # shutdown flushes the batch processor
    spans = []
    for body in received:
        req = ExportTraceServiceRequest()
        req.ParseFromString(body)
        for rs in req.resource_spans:
            service = {kv.key: kv.value.string_value for kv in rs.resource.attributes}["service.name"]
            for ss in rs.scope_spans:
                spans += [(service, sp) for sp in ss.spans]
    assert len(spans) == 1, received
    service, span = spans[0]
    attrs = {kv.key: kv.value for kv in span.attributes}
    assert service == "deck-under-test" and span.name == "chat gpt-4o-mini"
    assert attrs["gen_ai.system"].string_value == "openai"
    assert attrs["gen_ai.usage.output_tokens"].int_value > 0
    assert attrs["agentdeck.key"].string_value == "dev" and attrs["agentdeck.cost_usd"].double_value > 0
    assert KEY_DEV.encode() not in b"".join(received)
