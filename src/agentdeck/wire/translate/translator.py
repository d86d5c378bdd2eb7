"""One call's translation (``Translator``) and the stream meter that translates as it reads (``TranslatingMeter``)."""

from __future__ import annotations

from typing import Any

import orjson

from agentdeck.pricing import Usage
from agentdeck.wire.base import ParsedRequest, StreamFailure, WireProtocol
from agentdeck.wire.sse import SSEEvent
from agentdeck.wire.translate.canonical import CallerCodec, Failure, Finish, ProviderCodec, TextDelta, ToolArgs


class Translator:
    """One call's translation: caller codec <-> provider codec, built when the call is routed."""

    __slots__ = ("caller", "provider", "header")

    def __init__(self, caller: CallerCodec, provider: ProviderCodec) -> None:
        self.caller = caller
        self.provider = provider
        self.header = f"{caller.name}->{provider.name}"
        """The value of ``x-agentdeck-translated``."""

    def request(self, p: ParsedRequest, model: str, max_tokens: int) -> bytes:
        req = self.caller.decode_request(p.body)
        return orjson.dumps(self.provider.encode_request(req, model, max_tokens, p.stream))

    def path(self, model: str, stream: bool) -> str:
        return self.provider.upstream_path(model, stream)

    def headers(self) -> dict[str, str]:
        return self.provider.upstream_headers()

    def local_answer(self, estimate: int) -> bytes | None:
        """An answer the gateway gives itself instead of asking the provider (``count.EstimatedCount``);
        None for every translation that calls the provider. ``estimate`` is the request's input tokens."""
        return None

    def response(self, raw: bytes, model: str) -> bytes:
        """A whole answer in the caller's protocol (``model`` is what ran)."""
        return self.response_of(orjson.loads(raw), None, model)

    def response_of(self, body: Any, usage: Usage | None, model: str) -> bytes:
        """``response`` for an answer the pipeline already parsed and read the usage of (each is done once)."""
        resp = self.provider.decode_response(body, usage)
        resp.model = resp.model or model
        return orjson.dumps(self.caller.encode_response(resp))

    def error(self, status: int, raw: bytes) -> bytes:
        """A provider error in the caller's shape, same status, the provider's own message."""
        try:
            message = self.provider.error_message(orjson.loads(raw))
        except orjson.JSONDecodeError:
            message = ""
        return self.caller.error_body(status, message or raw.decode("utf-8", "replace")[:300] or f"provider error {status}",
                                      "upstream_error")

    def meter(self, caller_wire: WireProtocol, p: ParsedRequest, model: str) -> "TranslatingMeter":
        return TranslatingMeter(self, caller_wire, p, model)


class TranslatingMeter:
    """A ``StreamMeter`` over the provider's stream that forwards the caller's events.

    Each provider event is parsed once, by the provider codec's decoder; usage, the end and a
    failure are read from what it decoded (with the wire modules' own usage parsers, so they are
    what the provider's own meter would record), and the bytes forwarded are the caller codec's
    encoding of each canonical event.
    """

    __slots__ = ("decoder", "encoder", "wire", "chars", "done", "failure", "ended")

    def __init__(self, t: Translator, caller_wire: WireProtocol, p: ParsedRequest, model: str) -> None:
        self.decoder = t.provider.stream_decoder()
        self.encoder = t.caller.stream_encoder(model, p.wants_stream_usage)
        self.wire = caller_wire
        self.chars = 0
        self.done = False
        self.failure: StreamFailure | None = None
        self.ended = False

    @property
    def usage(self) -> Usage | None:
        return self.decoder.usage

    def feed(self, ev: SSEEvent) -> bytes | None:
        if self.ended:
            return None
        out = b""
        for cev in self.decoder.feed(ev):
            if isinstance(cev, TextDelta):
                self.chars += len(cev.text)
            elif isinstance(cev, ToolArgs):
                self.chars += len(cev.json)
            elif isinstance(cev, Failure):
                self.ended = True
                self.failure = StreamFailure(cev.status, cev.kind, cev.message)
                return out + self.wire.stream_error_event(cev.message or "the provider's stream failed", "upstream_error")
            elif isinstance(cev, Finish):
                self.ended = self.done = True
            out += self.encoder.encode(cev)
        return out or None

    @property
    def text_chars(self) -> int:
        """What the provider wrote so far, dropped thinking included (a cut stream is estimated from it)."""
        return self.chars + self.decoder.dropped_chars
