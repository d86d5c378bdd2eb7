"""The canonical form every protocol translates to and from: requests, answers, stream events.

Why a canonical form and not pairwise translators: with N protocols, pairwise means N*(N-1)
translators that drift apart; here each protocol is one codec (decode to this form, encode
from it), so a fourth protocol is one module. The form holds what the protocols share
(system prompt, turns of text, images, tool calls and results, tools, limits, sampling,
stop reasons, usage); what only one side has is dropped by its codec and listed in
docs/translation.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from agentdeck.pricing import Usage
from agentdeck.wire.sse import SSEEvent

Stop = Literal["end", "max_tokens", "tool_use", "stop_sequence", "content_filter"]


@dataclass(slots=True)
class Part:
    """One piece of a turn. ``kind`` says which fields mean something:

    text: ``text``; image: ``media_type`` + ``data`` (base64) or ``url``; tool_call: ``call_id``,
    ``name``, ``arguments`` (JSON text); tool_result: ``call_id``, ``name`` (when known), ``text``,
    ``is_error``.
    """

    kind: Literal["text", "image", "tool_call", "tool_result"]
    text: str = ""
    media_type: str = ""
    data: str = ""
    url: str = ""
    call_id: str = ""
    name: str = ""
    arguments: str = ""
    is_error: bool = False


@dataclass(slots=True)
class Turn:
    role: Literal["user", "assistant"]
    parts: list[Part]


@dataclass(slots=True)
class Tool:
    name: str
    description: str
    schema: dict[str, Any]


@dataclass(slots=True)
class Request:
    system: str = ""
    turns: list[Turn] = field(default_factory=list)
    tools: list[Tool] = field(default_factory=list)
    tool_choice: str | None = None
    """None (the provider's default), "auto", "none", "required", or a tool's name."""
    temperature: float | None = None
    top_p: float | None = None
    stop: list[str] = field(default_factory=list)
    json_schema: dict[str, Any] | None = None
    """Structured output: a JSON schema the answer must follow ({} for "any JSON object")."""


@dataclass(slots=True)
class Response:
    id: str
    model: str
    parts: list[Part]
    stop: Stop
    usage: Usage


# -- stream events ---------------------------------------------------------------------------
@dataclass(slots=True)
class Start:
    id: str
    model: str
    usage: Usage | None = None
    """The input side when the provider says it up front (Anthropic's message_start)."""


@dataclass(slots=True)
class TextDelta:
    text: str


@dataclass(slots=True)
class ToolStart:
    index: int
    """The tool call's position among this answer's tool calls (0, 1, ...)."""
    call_id: str
    name: str


@dataclass(slots=True)
class ToolArgs:
    index: int
    json: str


@dataclass(slots=True)
class Finish:
    stop: Stop
    usage: Usage


@dataclass(slots=True)
class Failure:
    status: int
    message: str
    kind: str = "error"


Event = Start | TextDelta | ToolStart | ToolArgs | Finish | Failure


class StreamDecoder(Protocol):
    usage: Usage | None
    """The provider's usage so far (final once Finish is out), read with the wire module's own parser."""
    dropped_chars: int
    """Characters the provider wrote that have no canonical event (Anthropic thinking), for estimates."""

    def feed(self, ev: SSEEvent) -> list[Event]:
        """The canonical events one provider event carries (often one, sometimes none)."""
        ...


class StreamEncoder(Protocol):
    def encode(self, ev: Event) -> bytes:
        """The caller's bytes for one canonical event (b"" when it has none to send yet)."""
        ...


class CallerCodec(Protocol):
    """The caller's half of a translation: read its request, write the answer in its protocol."""

    name: str

    def decode_request(self, body: dict[str, Any]) -> Request: ...

    def encode_response(self, resp: Response) -> dict[str, Any]: ...

    def stream_encoder(self, model: str, include_usage: bool) -> StreamEncoder: ...

    def error_body(self, status: int, message: str, code: str | None = None, param: str | None = None) -> bytes: ...


class ProviderCodec(Protocol):
    """The provider's half: write the request in its protocol, read its answer, stream and errors."""

    name: str

    def encode_request(self, req: Request, model: str, max_tokens: int, stream: bool) -> dict[str, Any]: ...

    def upstream_path(self, model: str, stream: bool) -> str: ...

    def upstream_headers(self) -> dict[str, str]: ...

    def decode_response(self, body: Any, usage: Usage | None = None) -> Response:
        """The provider's whole answer; ``usage`` when the caller already read it (with the wire module's parser)."""
        ...

    def stream_decoder(self) -> StreamDecoder: ...

    def error_message(self, body: Any) -> str: ...


class TokenCounter(Protocol):
    """A provider protocol's own count endpoint, for a caller's count_tokens (only some protocols have one)."""

    def count_path(self, model: str) -> str: ...

    def encode_count_request(self, req: Request, model: str) -> dict[str, Any]: ...

    def decode_count(self, body: Any) -> int | None:
        """The input tokens the provider counted, None when its answer has no count."""
        ...


class Codec(CallerCodec, ProviderCodec, Protocol):
    """A protocol that is both a caller's and a provider's (all but the Responses API, caller-only)."""


def total_input(u: Usage) -> int:
    """Every input token, cached ones included (OpenAI's prompt_tokens, Gemini's promptTokenCount)."""
    return u.input_tokens + u.cache_read_tokens + u.cache_write_tokens
