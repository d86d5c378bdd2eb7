"""The wire layer: one module per protocol, and the SSE codec they share.

``PROTOCOLS`` maps each client endpoint to the object that speaks it; ``PROVIDER_WIRES``
maps a provider's protocol to the object whose auth and error shapes it uses. Adding a
protocol is one module implementing ``WireProtocol`` and a line in each table.
"""

from __future__ import annotations

from agentdeck.wire import anthropic, gemini, openai_chat, openai_responses
from agentdeck.wire.base import BadRequest, ParsedRequest, StreamFailure, StreamMeter, WireProtocol
from agentdeck.wire.endpoints import BILLABLE, BY_PATH, Endpoint

PROTOCOLS: dict[Endpoint, WireProtocol] = {
    Endpoint.CHAT: openai_chat.PROTOCOL,
    Endpoint.RESPONSES: openai_responses.PROTOCOL,
    Endpoint.MESSAGES: anthropic.PROTOCOL,
    Endpoint.COUNT_TOKENS: anthropic.PROTOCOL,
    Endpoint.GENERATE: gemini.PROTOCOL,
    Endpoint.STREAM_GENERATE: gemini.PROTOCOL,
}
PROVIDER_WIRES: dict[str, WireProtocol] = {"openai": openai_chat.PROTOCOL, "anthropic": anthropic.PROTOCOL,
                                           "gemini": gemini.PROTOCOL}

__all__ = ["BILLABLE", "BY_PATH", "BadRequest", "Endpoint", "PROTOCOLS", "PROVIDER_WIRES", "ParsedRequest", "StreamFailure",
           "StreamMeter", "WireProtocol"]
