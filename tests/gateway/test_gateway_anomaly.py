"""Anomaly detection end to end: a 10x burst through the real gateway raises a P0 alert event and a
Slack-compatible webhook (a local server) receives it. The detector runs on a simulated clock so the
five-minute baseline takes seconds; everything else (gateway, SDK, webhook sink, HTTP) is real."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator

import httpx
import pytest

from agentdeck.budget.anomaly import AnomalyDetector
from deck_support import GATEWAY_KEY, FakeClock


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            received.append(json.loads(self.rfile.read(int(self.headers["content-length"]))))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    server.shutdown()


def test_10x_burst_raises_p0_and_the_webhook_gets_it(make_gateway: Any, webhook: tuple[str, list[dict[str, Any]]]) -> None:
    url, received = webhook
    gw = make_gateway(alerts={"webhook_url": url, "dedupe_window_s": 300})
    clock = FakeClock(1_000_000.0)
    gw.gateway.anomaly.clock = clock  # the stages hold the detector; drive its clock
    sub = gw.bus.subscribe("test", types={"alert"})
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}], "max_tokens": 5}
    with httpx.Client(base_url=gw.url, headers={"Authorization": f"Bearer {GATEWAY_KEY}"}, timeout=10) as c:
        for _ in range(150):  # steady: one call per simulated second
            assert c.post("/v1/chat/completions", json=body).status_code == 200
            clock.t += 1.0
        assert [e for e in sub.drain() if e.kind == "rps-anomaly"] == []
        for _ in range(12 * 12):  # an agent loop: 12 calls per simulated second for 12 s
            c.post("/v1/chat/completions", json=body)
            clock.t += 1.0 / 12
    deadline = time.monotonic() + 5
    while not received and time.monotonic() < deadline:
        time.sleep(0.05)
    p0 = [e for e in sub.drain() if e.kind == "rps-anomaly" and e.severity == "P0"]
    assert p0 and any(e.key == "dev" for e in p0)
    assert received, "the webhook got nothing"
    text = json.dumps(received)
    assert "P0" in text and "dev" in text and GATEWAY_KEY not in text
