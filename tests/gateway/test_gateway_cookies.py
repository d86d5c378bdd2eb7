"""A provider's Set-Cookie stays with the call that got it.

One upstream session serves every caller, so a cookie jar on it would keep a provider's cookie
(a load balancer's, a bot check's) and send it on every later call, whoever made it. The gateway
keeps none; the caller still sees the provider's answer.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterator

import openai
import pytest
from deck_support import GATEWAY_KEY

_ANSWER = json.dumps({
    "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
}).encode()


class _CookieSetter(BaseHTTPRequestHandler):
    """Answers every chat call with a Set-Cookie and records the Cookie header each call arrived with."""

    cookies: list[str | None] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        self.rfile.read(int(self.headers.get("content-length", "0")))
        type(self).cookies.append(self.headers.get("cookie"))
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("set-cookie", "__cf_bm=provider-session-token; Path=/; HttpOnly")
        self.send_header("content-length", str(len(_ANSWER)))
        self.end_headers()
        self.wfile.write(_ANSWER)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def cookie_upstream() -> Iterator[tuple[str, list[str | None]]]:
    handler = type("Handler", (_CookieSetter,), {"cookies": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://localhost:{server.server_address[1]}", handler.cookies  # a host name: aiohttp keeps no cookies of bare IPs
    finally:
        server.shutdown()
        server.server_close()


def test_a_providers_cookie_is_not_sent_on_later_calls(make_gateway: Callable[..., Any],
                                                       cookie_upstream: tuple[str, list[str | None]]) -> None:
    url, cookies = cookie_upstream
    gw = make_gateway(upstream_url=url)
    client = openai.OpenAI(base_url=gw.url + "/v1", api_key=GATEWAY_KEY, max_retries=0, timeout=20)
    for _ in range(3):
        r = client.chat.completions.create(model="gpt-4o-mini", max_tokens=8,
                                           messages=[{"role": "user", "content": "hi"}])
        assert r.choices[0].message.content == "ok"
    assert cookies == [None, None, None]
