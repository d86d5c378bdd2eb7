"""`agentdeck serve --workers 2` with `[otel] endpoint`: each worker exports a span per call it served to a
real OTLP/HTTP receiver on loopback, as a single `agentdeck serve` does (tests/ops/test_ops_otel.py)."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import openai
import pytest
from cluster_support import RedisServer, stop_serve, write_cluster_serve_config
from deck_support import GATEWAY_KEY, otlp_receiver

pytest.importorskip("opentelemetry.exporter.otlp.proto.http")


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[bytes]]]:
    with otlp_receiver() as r:
        yield r


async def test_each_worker_exports_the_spans_of_the_calls_it_served(tmp_path: Path, redis_server: RedisServer,
                                                                      mock: Any,
                                                                      receiver: tuple[str, list[bytes]]) -> None:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    endpoint, received = receiver
    cfg = write_cluster_serve_config(tmp_path / "gw.toml", tmp_path / "data", mock.url, redis_server.url,
                                     extra=f'[otel]\nendpoint = "{endpoint}"\nservice_name = "deck-workers"\n')
    proc = subprocess.Popen([sys.executable, "-m", "agentdeck", "serve", "--config", str(cfg), "--workers", "2",
                             "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    m = re.search(r"(http://\S+)", line)
    assert m and "2 workers" in line, (line, proc.stderr.read() if proc.poll() is not None and proc.stderr else "")
    url = m.group(1)
    try:
        async def one() -> str:
            # A fresh client per call: a new connection each time, so the kernel spreads them over the workers.
            async with openai.AsyncOpenAI(base_url=url + "/v1", api_key=GATEWAY_KEY, max_retries=0) as c:
                raw = await c.chat.completions.with_raw_response.create(
                    model="house-mini", max_tokens=20, messages=[{"role": "user", "content": "hi"}])
                return raw.headers["x-agentdeck-request-id"]

        ids = await asyncio.gather(*(one() for _ in range(30)))
        assert len({i[:12] for i in ids}) == 2  # both workers served calls
    finally:
        err = stop_serve(proc)  # each worker's shutdown flushes its batch processor
    assert proc.returncode == 0 and "Traceback" not in err, err[-2000:]
    spans: dict[str, Any] = {}
    services = set()
    for body in received:
        req = ExportTraceServiceRequest()
        req.ParseFromString(body)
        for rs in req.resource_spans:
            services.add({kv.key: kv.value.string_value for kv in rs.resource.attributes}["service.name"])
            for ss in rs.scope_spans:
                for sp in ss.spans:
                    attrs = {kv.key: kv.value for kv in sp.attributes}
                    spans[attrs["agentdeck.request_id"].string_value] = attrs
    assert services == {"deck-workers"}
    assert set(spans) == set(ids)  # one span per call, whichever worker served it
    assert all(a["agentdeck.key"].string_value == "dev" and a["gen_ai.usage.output_tokens"].int_value > 0
               for a in spans.values())
    assert GATEWAY_KEY.encode() not in b"".join(received)
