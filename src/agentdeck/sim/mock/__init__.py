"""The simulated LLM provider: OpenAI and Anthropic wire protocols, scripted per run and per request.

Why it exists: the gateway, its tests, the demo and the benchmark need an upstream that the
official ``openai`` and ``anthropic`` SDKs cannot tell from the real thing (same JSON shapes,
same SSE event sequences, same error bodies and rate-limit headers), that can be scripted per
request (magic words in the last user message) and per run (:class:`MockSettings`, changeable
at runtime through ``POST /_mock/settings``), and that is fast enough not to be the bottleneck
of a gateway benchmark.

Modules: ``settings`` (what it does), ``answers`` (what it says), ``streams`` (how it streams),
``server`` (the ASGI app and the ways to serve it), ``asgi`` (the request/response plumbing).
"""

from agentdeck.sim.mock.answers import estimate_tokens
from agentdeck.sim.mock.server import (
    MockApp,
    MockServer,
    MockState,
    format_go_duration,
    make_app,
    run_mock_process,
    serve_forever,
    settings_to_argv,
    wait_for_mock,
)
from agentdeck.sim.mock.settings import MAGIC_WORDS, Magic, MockSettings, parse_magic

__all__ = [
    "MAGIC_WORDS",
    "Magic",
    "MockApp",
    "MockServer",
    "MockSettings",
    "MockState",
    "estimate_tokens",
    "format_go_duration",
    "make_app",
    "parse_magic",
    "run_mock_process",
    "serve_forever",
    "settings_to_argv",
    "wait_for_mock",
]
