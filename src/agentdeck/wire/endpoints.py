"""The client endpoints the gateway serves, as one enum instead of path strings.

Why an enum: the path of a call decides its protocol, what the gateway reads from the
body and how the answer is metered. Comparing strings in a dozen places let those
decisions drift apart; one member per endpoint keeps them in one table.
"""

from __future__ import annotations

from enum import StrEnum


class Endpoint(StrEnum):
    """A client endpoint; the value is the path the gateway serves it under."""

    CHAT = "/v1/chat/completions"
    RESPONSES = "/v1/responses"
    MESSAGES = "/v1/messages"
    COUNT_TOKENS = "/v1/messages/count_tokens"
    GENERATE = "/v1beta/models/{model}:generateContent"
    """Gemini: the model is in the path (see ``agentdeck.wire.gemini.match_path``)."""
    STREAM_GENERATE = "/v1beta/models/{model}:streamGenerateContent"

    @property
    def protocol(self) -> str:
        """The provider protocol that speaks this endpoint ("openai", "anthropic" or "gemini")."""
        return _PROTOCOL[self]

    @property
    def billable(self) -> bool:
        """False for count_tokens: it costs nothing, so nothing is reserved or priced."""
        return self is not Endpoint.COUNT_TOKENS


_PROTOCOL: dict[Endpoint, str] = {
    Endpoint.CHAT: "openai",
    Endpoint.RESPONSES: "openai",
    Endpoint.MESSAGES: "anthropic",
    Endpoint.COUNT_TOKENS: "anthropic",
    Endpoint.GENERATE: "gemini",
    Endpoint.STREAM_GENERATE: "gemini",
}

BY_PATH: dict[str, Endpoint] = {e.value: e for e in Endpoint if "{" not in e.value}
"""The endpoints served under one fixed path; Gemini's carry the model in theirs."""
BILLABLE: frozenset[Endpoint] = frozenset(e for e in Endpoint if e.billable)
"""The endpoints that are priced and reserved (a set lookup on the request path, not a property)."""
