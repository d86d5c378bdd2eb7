"""Server-sent events: one incremental decoder and one encoder for every protocol.

The gateway forwards provider streams byte for byte while reading them (usage,
errors, time to first token), so the decoder hands back each event block's exact
bytes (`SSEEvent.raw`) next to its parsed fields; concatenating `raw` over a whole
stream gives back the input. Parsing follows the WHATWG event-stream rules:

- lines end in LF, CRLF or CR; a CRLF split across two chunks is one line end;
- a blank line ends a block; blank lines before a block's first field are
  absorbed into that block's `raw` (they dispatch nothing);
- a line starting with ":" is a comment; "field:value" drops one space after the
  colon; a line without a colon is a field with an empty value;
- `data` lines are joined with "\\n"; `event`, `id` (ignored if it holds NUL)
  and `retry` (digits only, kept on the decoder) are read; other fields ignored;
- a UTF-8 byte order mark at the very start of the stream is skipped.

Two deliberate departures, both for pass-through: a block without any `data`
line (e.g. ": ping") is still returned, with `data=None`, so its bytes can be
forwarded; and `flush()` returns a last block that lacks its blank line, which a
browser would drop, so the caller decides what to do with a truncated stream.

Every streamed byte goes through `SSEDecoder.feed`, so the common case (LF-only
framing, one `data:` line per block) is a `bytes.find` and a slice, and so is
CRLF-only framing; CR or mixed framing takes a precompiled regex search per block. Neither path loops per byte in Python.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["SSEDecoder", "SSEEvent", "encode_comment", "encode_event"]

_BOM = b"\xef\xbb\xbf"
# A blank line: a line end directly followed by another. The groups are atomic so
# a CRLF is never re-read as CR + an LF "blank line" (which would end "a\r\nb").
_BLANK_LINE = re.compile(rb"(?>\r\n|\r|\n)(?>\r\n|\r|\n)")
_LEADING_BLANKS = re.compile(rb"[\r\n]*")
_ANY_LINE_END = re.compile(rb"\r\n|\r|\n")


@dataclass(slots=True)
class SSEEvent:
    """One event block: its exact bytes and the fields read from them."""

    raw: bytes
    """The block's bytes as received, terminator (and any absorbed blank lines) included."""
    event: str | None
    """The `event:` name; None when absent or empty (the spec's default "message")."""
    data: bytes | None
    """The `data:` values joined with b"\\n"; None when the block had no data line."""
    id: str | None = None
    """This block's `id:` value, None when it had none (see `SSEDecoder.last_event_id`)."""


class SSEDecoder:
    """Turns a byte stream, chunk by chunk, into complete `SSEEvent`s.

    Not thread-safe; one decoder per stream.
    """

    __slots__ = ("_buf", "_head", "last_event_id", "retry")

    def __init__(self) -> None:
        self._buf = b""
        # "start": no bytes yet (a BOM may come); "bom": the stream began with a
        # BOM and its first block is not out yet; None: past the stream's head.
        self._head: str | None = "start"
        self.last_event_id: str = ""
        """The spec's last event ID: the latest `id:` seen, kept across blocks."""
        self.retry: int | None = None
        """The latest valid `retry:` value in milliseconds, None until one arrives."""

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Add `chunk`; return the blocks it completed, keep the unfinished rest."""
        buf = self._buf + chunk if self._buf else bytes(chunk)
        if not buf:
            return []
        events: list[SSEEvent] = []
        if self._head is not None:
            pos = self._scan_head(buf, events)
            if self._head is not None:
                self._buf = buf
                return events
        else:
            pos = 0
        if 13 not in buf:
            pos = self._scan_lf(buf, pos, events)
        elif buf.count(b"\r\n") == buf.count(b"\r") == buf.count(b"\n"):
            pos = self._scan_crlf(buf, pos, events)
        else:
            pos = self._scan_any(buf, pos, events)
        self._buf = buf[pos:] if pos else buf
        return events

    def flush(self) -> list[SSEEvent]:
        """End of stream: return what is left as a last block, blank line or not.

        A remainder of blank lines only becomes an event with no fields, so the
        raw bytes of all events still add up to the whole stream.
        """
        buf, self._buf = self._buf, b""
        if not buf:
            return []
        events = self.feed(buf)
        rest, self._buf = self._buf, b""
        if rest:
            start = len(_BOM) if self._head == "bom" else 0
            events.append(self._parse(rest, _LEADING_BLANKS.match(rest, start).end(), len(rest)))
        self._head = None
        return events

    def _scan_head(self, buf: bytes, events: list[SSEEvent]) -> int:
        """The stream's first bytes: skip a BOM for parsing (it stays in `raw`).

        Returns where scanning goes on; leaves `_head` set while the first block
        is still incomplete.
        """
        if self._head == "start":
            if len(buf) < len(_BOM) and _BOM.startswith(buf):
                return 0
            if not buf.startswith(_BOM):
                self._head = None
                return 0
            self._head = "bom"
        body = _LEADING_BLANKS.match(buf, len(_BOM)).end()
        found = _BLANK_LINE.search(buf, body)
        if found is None:
            return 0
        self._head = None
        events.append(self._parse(buf[: found.end()], body, found.start()))
        return found.end()

    def _scan_lf(self, buf: bytes, pos: int, events: list[SSEEvent]) -> int:
        """LF-only framing: cut blocks at b"\\n\\n"; return where the rest starts."""
        find = buf.find
        append = events.append
        while True:
            body = pos
            if buf.startswith(b"\n", pos):
                body = _LEADING_BLANKS.match(buf, pos).end()
            end = find(b"\n\n", body)
            if end < 0:
                return pos
            block = buf[pos : end + 2]
            last = len(block) - 2
            if body == pos and block.startswith(b"data: ") and block.find(b"\n", 6) == last:
                # One `data: ` line, nothing else: by far the most common block (OpenAI).
                append(SSEEvent(block, None, block[6:-2]))
            elif body == pos and block.startswith(b"event: "):
                # `event: ` then one `data: ` line (Anthropic, Responses), else the general parse.
                nl = block.find(b"\n", 7)
                if block.startswith(b"data: ", nl + 1) and block.find(b"\n", nl + 7) == last:
                    append(SSEEvent(block, block[7:nl].decode("utf-8", "replace") or None, block[nl + 7 : -2]))
                else:
                    append(self._parse(block, 0, end - pos))
            else:
                append(self._parse(block, body - pos, end - pos))
            pos = end + 2

    def _scan_crlf(self, buf: bytes, pos: int, events: list[SSEEvent]) -> int:
        """CRLF-only framing (every CR and LF pairs up): cut blocks at b"\\r\\n\\r\\n"."""
        find = buf.find
        append = events.append
        while True:
            body = pos
            if buf.startswith(b"\r\n", pos):
                body = _LEADING_BLANKS.match(buf, pos).end()
            end = find(b"\r\n\r\n", body)
            if end < 0:
                return pos
            block = buf[pos : end + 4]
            last = len(block) - 4
            if body == pos and block.startswith(b"data: ") and block.find(b"\r", 6) == last:
                append(SSEEvent(block, None, block[6:-4]))
            elif body == pos and block.startswith(b"event: "):
                cr = block.find(b"\r", 7)
                if block.startswith(b"data: ", cr + 2) and block.find(b"\r", cr + 8) == last:
                    append(SSEEvent(block, block[7:cr].decode("utf-8", "replace") or None, block[cr + 8 : -4]))
                else:
                    append(self._parse(block, 0, end - pos))
            else:
                append(self._parse(block, body - pos, end - pos))
            pos = end + 4

    def _scan_any(self, buf: bytes, pos: int, events: list[SSEEvent]) -> int:
        """Any framing (CR, CRLF, mixed): cut blocks at a regex-found blank line."""
        search = _BLANK_LINE.search
        leading = _LEADING_BLANKS.match
        append = events.append
        while True:
            body = leading(buf, pos).end()
            found = search(buf, body)
            if found is None:
                return pos
            end = found.end()
            block = buf[pos:end]
            append(self._parse(block, body - pos, found.start() - pos))
            pos = end

    def _parse(self, block: bytes, start: int, stop: int) -> SSEEvent:
        """Read the fields of `block[start:stop]` (its lines, terminators excluded)."""
        text = block[start:stop]
        if 13 not in text:
            lines = text.split(b"\n")
        elif text.count(b"\r") == text.count(b"\n") == text.count(b"\r\n"):
            lines = text.split(b"\r\n")
        else:
            lines = _ANY_LINE_END.split(text)
        event: str | None = None
        data: list[bytes] | None = None
        event_id: str | None = None
        for line in lines:
            if not line or line[0] == 0x3A:  # empty (only at the stream's end) or ":" comment
                continue
            field, _, value = line.partition(b":")
            if value[:1] == b" ":
                value = value[1:]
            if field == b"data":
                if data is None:
                    data = [value]
                else:
                    data.append(value)
            elif field == b"event":
                event = value.decode("utf-8", "replace") or None
            elif field == b"id":
                if b"\x00" not in value:
                    event_id = value.decode("utf-8", "replace")
                    self.last_event_id = event_id
            elif field == b"retry":
                if value.isdigit():
                    self.retry = int(value)
        return SSEEvent(
            block,
            event,
            None if data is None else (data[0] if len(data) == 1 else b"\n".join(data)),
            event_id,
        )


def _line_end(crlf: bool) -> bytes:
    return b"\r\n" if crlf else b"\n"


def encode_event(
    data: bytes | str,
    event: str | None = None,
    *,
    crlf: bool = False,
    id: str | None = None,
) -> bytes:
    """One event block: optional `event:` and `id:`, one `data:` line per line of `data`.

    Any line end inside `data` (LF, CRLF, CR) starts a new `data:` line, so the
    decoder gives back `data` with LF line ends. `crlf=True` frames the block with
    CRLF, as some providers do.
    """
    raw = data if type(data) is bytes else data.encode("utf-8") if isinstance(data, str) else bytes(data)
    nl = b"\r\n" if crlf else b"\n"
    # `int in bytes` is a plain memchr; `b"\n" in raw` sets up a substring search (about 8x slower).
    if id is None and 10 not in raw and 13 not in raw:
        # The common blocks (one data line, maybe a name): one concatenation.
        if event is None:
            return b"data: " + raw + nl + nl
        return b"event: " + _single_line("event", event) + nl + b"data: " + raw + nl + nl
    parts: list[bytes] = []
    if event is not None:
        parts.append(b"event: " + _single_line("event", event) + nl)
    if id is not None:
        parts.append(b"id: " + _single_line("id", id) + nl)
    if 10 in raw or 13 in raw:
        for line in _ANY_LINE_END.split(raw):
            parts.append(b"data: " + line + nl)
    else:
        parts.append(b"data: " + raw + nl)
    parts.append(nl)
    return b"".join(parts)


def encode_comment(text: str, *, crlf: bool = False) -> bytes:
    """A comment-only block (": ping"), e.g. a keep-alive; one ":" line per line of `text`."""
    nl = _line_end(crlf)
    lines = _ANY_LINE_END.split(text.encode("utf-8"))
    return b"".join((b": " + line if line else b":") + nl for line in lines) + nl


def _single_line(name: str, value: str) -> bytes:
    """A field value that must stay on one line; a line end in it is a caller bug."""
    if "\n" in value or "\r" in value:
        raise ValueError(f"SSE {name} must not contain a line end: {value!r}")
    return value.encode("utf-8")
