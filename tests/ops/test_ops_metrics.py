"""/metrics follows Prometheus conventions: it parses, counters are counters (the provider's 429s and the
bus's drops included), no *_created series, a build_info gauge with the version, units in names."""

from __future__ import annotations

from pathlib import Path

import httpx
from ops_support import chat
from prometheus_client.parser import text_string_to_metric_families

from agentdeck import __version__
from agentdeck.config import load_config
from agentdeck.gateway.server import GatewayThread


def test_metrics_parse_with_the_right_types(config: Path) -> None:
    with GatewayThread(load_config(config), port=0) as gt:
        assert chat(gt.url).status_code == 200
        r = httpx.get(gt.url + "/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(r.text)}
    types = {name: f.type for name, f in families.items()}
    assert types["agentdeck_provider_rate_limited"] == "counter"
    assert types["agentdeck_bus_dropped"] == "counter"
    assert types["agentdeck_requests"] == "counter" and types["agentdeck_request_latency_seconds"] == "histogram"
    assert types["agentdeck_build_info"] == "gauge"
    assert types["agentdeck_in_flight_requests"] == "gauge" and types["agentdeck_kill_switch"] == "gauge"
    samples = [s for f in families.values() for s in f.samples]
    assert not [s.name for s in samples if s.name.endswith("_created")]
    for f in families.values():
        if f.type == "counter":
            assert all(s.name.endswith("_total") for s in f.samples), f.name
    [build] = families["agentdeck_build_info"].samples
    assert build.value == 1 and build.labels["version"] == __version__
    limited = {s.labels["provider"]: s.value for s in families["agentdeck_provider_rate_limited"].samples}
    assert set(limited) == {"anthropic", "openai"}
    served = [s for s in families["agentdeck_requests"].samples if s.labels.get("status") == "200"]
    assert served and served[0].labels["provider"] == "openai" and served[0].value == 1
    assert "agentdeck_limit_requests_per_second" in families and "agentdeck_spend_day_usd" in families
