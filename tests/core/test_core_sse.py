"""The shared SSE codec: WHATWG framing, chunk-split invariance, exact raw bytes."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentdeck.wire.sse import SSEDecoder, SSEEvent, encode_comment, encode_event


def decode_all(stream: bytes, *chunks_at: int) -> list[SSEEvent]:
    """Decode `stream` fed in pieces cut at the given offsets, then flushed."""
    decoder = SSEDecoder()
    events: list[SSEEvent] = []
    last = 0
    for cut in (*chunks_at, len(stream)):
        events += decoder.feed(stream[last:cut])
        last = cut
    return events + decoder.flush()


def fields(events: list[SSEEvent]) -> list[tuple[str | None, bytes | None, str | None]]:
    return [(e.event, e.data, e.id) for e in events]


def data_only(events: list[SSEEvent]) -> list[tuple[str | None, bytes | None]]:
    """What a consumer sees: events with data (comment-only and empty blocks skipped)."""
    return [(e.event, e.data) for e in events if e.data is not None]


ANTHROPIC_LF = (
    b"event: message_start\n"
    b'data: {"type":"message_start","message":{"id":"msg_1","usage":{"input_tokens":5}}}\n\n'
    b"event: ping\ndata: {\"type\": \"ping\"}\n\n"
    b"event: content_block_delta\n"
    b'data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}\n\n'
    b"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"
)
OPENAI_LF = (
    b": keep-alive\n\n"
    b'data: {"choices":[{"delta":{"content":"Hel"}}]}\n\n'
    b'data: {"choices":[{"delta":{"content":"lo"}}]}\n\n'
    b"data: [DONE]\n\n"
)


@pytest.mark.parametrize("line_end", [b"\n", b"\r\n", b"\r"])
def test_each_line_end_gives_the_same_events(line_end: bytes) -> None:
    stream = ANTHROPIC_LF.replace(b"\n", line_end)
    events = decode_all(stream)
    assert fields(events) == fields(decode_all(ANTHROPIC_LF))
    assert [e.event for e in events] == ["message_start", "ping", "content_block_delta", "message_stop"]
    assert json.loads(events[2].data or b"")["delta"]["text"] == "Hi"
    assert b"".join(e.raw for e in events) == stream


def test_mixed_line_ends_in_one_stream() -> None:
    stream = b"event: a\r\ndata: 1\rdata: 2\n\r\ndata: 3\r\r: c\n\n"
    assert fields(decode_all(stream)) == [("a", b"1\n2", None), (None, b"3", None), (None, None, None)]


def test_multi_line_data_is_joined_with_lf() -> None:
    events = decode_all(b"data: first\ndata: second\ndata:\ndata: fourth\n\n")
    assert events[0].data == b"first\nsecond\n\nfourth"


def test_comment_only_block_has_no_data_and_keeps_its_bytes() -> None:
    events = decode_all(b": ping\n\ndata: x\n: inline comment\n\n")
    assert fields(events) == [(None, None, None), (None, b"x", None)]
    assert events[0].raw == b": ping\n\n"


def test_space_after_colon_is_optional_and_only_one_is_dropped() -> None:
    events = decode_all(b"data:compact\n\ndata: spaced\n\ndata:  two\n\nevent:e\ndata\n\n")
    assert [e.data for e in events] == [b"compact", b"spaced", b" two", b""]
    assert events[3].event == "e"


def test_event_id_and_retry_fields() -> None:
    decoder = SSEDecoder()
    events = decoder.feed(b"event: delta\nid: 7\nretry: 1500\nfoo: bar\ndata: x\n\nretry: soon\ndata: y\n\n")
    assert fields(events) == [("delta", b"x", "7"), (None, b"y", None)]
    assert decoder.retry == 1500
    assert decoder.last_event_id == "7"
    assert decoder.feed(b"id: a\x00b\ndata: z\n\n")[0].id is None


def test_empty_event_name_means_default() -> None:
    assert decode_all(b"event:\ndata: x\n\n")[0].event is None


def test_blank_lines_between_blocks_dispatch_nothing_but_stay_in_raw() -> None:
    stream = b"\n\n\ndata: a\n\n\n\ndata: b\n\n\n"
    events = decode_all(stream)
    assert data_only(events) == [(None, b"a"), (None, b"b")]
    assert b"".join(e.raw for e in events) == stream


def test_incomplete_block_waits_for_its_blank_line() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\n") == []
    assert decoder.feed(b"data: b\n") == []
    assert fields(decoder.feed(b"\n")) == [(None, b"a\nb", None)]


def test_flush_returns_a_trailing_block_without_blank_line() -> None:
    decoder = SSEDecoder()
    assert fields(decoder.feed(b"data: a\n\nevent: e\ndata: last")) == [(None, b"a", None)]
    tail = decoder.flush()
    assert fields(tail) == [("e", b"last", None)]
    assert tail[0].raw == b"event: e\ndata: last"
    assert decoder.flush() == []


def test_crlf_split_between_chunks_is_one_line_end() -> None:
    stream = b"data: a\r\n\r\ndata: b\r\n\r\n"
    for cut in range(len(stream) + 1):
        events = decode_all(stream, cut)
        assert data_only(events) == [(None, b"a"), (None, b"b")], cut
        assert b"".join(e.raw for e in events) == stream


def test_byte_order_mark_is_skipped_once_and_kept_in_raw() -> None:
    stream = b"\xef\xbb\xbfdata: a\n\n\xef\xbb\xbfdata: b\n\n"
    for cut in range(len(stream) + 1):
        events = decode_all(stream, cut)
        assert [e.data for e in events] == [b"a", None], cut  # the second BOM is a field name
        assert b"".join(e.raw for e in events) == stream


@pytest.mark.parametrize("stream", [ANTHROPIC_LF, OPENAI_LF, ANTHROPIC_LF.replace(b"\n", b"\r\n"),
                                    OPENAI_LF.replace(b"\n", b"\r"), b"data: a\n\n: c\r\n\r\nevent: x\rdata: y"])
def test_split_at_every_offset_gives_the_same_events(stream: bytes) -> None:
    whole = decode_all(stream)
    for cut in range(len(stream) + 1):
        for second in (cut, min(cut + 1, len(stream)), min(cut + 7, len(stream))):
            events = decode_all(stream, cut, second)
            assert data_only(events) == data_only(whole), (cut, second)
            assert b"".join(e.raw for e in events) == stream


def test_one_byte_at_a_time() -> None:
    stream = OPENAI_LF + ANTHROPIC_LF.replace(b"\n", b"\r\n")
    decoder = SSEDecoder()
    events = [e for i in range(len(stream)) for e in decoder.feed(stream[i : i + 1])] + decoder.flush()
    assert data_only(events) == data_only(decode_all(stream))
    assert b"".join(e.raw for e in events) == stream


def test_encode_event_lines_and_framing() -> None:
    assert encode_event('{"a":1}') == b'data: {"a":1}\n\n'
    assert encode_event(b"x", "ping") == b"event: ping\ndata: x\n\n"
    assert encode_event("a\nb\r\nc", "e", crlf=True, id="3") == b"event: e\r\nid: 3\r\ndata: a\r\ndata: b\r\ndata: c\r\n\r\n"
    assert encode_comment("ping") == b": ping\n\n"
    assert encode_comment("", crlf=True) == b":\r\n\r\n"
    with pytest.raises(ValueError, match="event"):
        encode_event("x", "bad\nname")


def test_encode_then_decode_round_trip() -> None:
    stream = encode_comment("ping") + encode_event(" lead space\n\ntrail ", "e") + encode_event("", crlf=True)
    assert fields(decode_all(stream)) == [(None, None, None), ("e", b" lead space\n\ntrail ", None), (None, b"", None)]


# Property tests: any stream, any chunking.

_text = st.text(st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)), max_size=12)
_line_end = st.sampled_from([b"\n", b"\r\n", b"\r"])
_line = st.one_of(
    st.builds(lambda v: b"data: " + v.encode(), _text),
    st.builds(lambda v: b"data:" + v.encode(), _text),
    st.builds(lambda v: b"event: " + v.encode(), _text),
    st.builds(lambda v: b":" + v.encode(), _text),
    st.builds(lambda v: b"id: " + v.encode(), _text),
    st.just(b""),
    st.builds(lambda v: v.encode(), _text),
)
_stream = st.lists(st.tuples(_line, _line_end), max_size=20).map(lambda ls: b"".join(a + b for a, b in ls))


@settings(max_examples=300, deadline=None, database=None)
@given(stream=_stream, cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=6))
def test_property_chunking_never_changes_events_and_raw_adds_up(stream: bytes, cuts: list[int]) -> None:
    whole = decode_all(stream)
    split = decode_all(stream, *sorted(min(c, len(stream)) for c in cuts))
    assert data_only(split) == data_only(whole)
    assert b"".join(e.raw for e in split) == stream
    assert b"".join(e.raw for e in whole) == stream


@settings(max_examples=200, deadline=None, database=None)
@given(
    events=st.lists(st.tuples(st.text(max_size=30), st.one_of(st.none(), _text.filter(bool))), max_size=8),
    crlf=st.booleans(),
)
def test_property_encoded_events_decode_back(events: list[tuple[str, str | None]], crlf: bool) -> None:
    stream = b"".join(encode_event(data, name, crlf=crlf) for data, name in events)
    expected = [(name, data.replace("\r\n", "\n").replace("\r", "\n").encode()) for data, name in events]
    assert data_only(decode_all(stream)) == expected


def reference_parse(stream: bytes) -> list[tuple[str | None, bytes]]:
    """A slow line-by-line reading of the spec, as an oracle for the fast decoder."""
    import re

    if stream.startswith(b"\xef\xbb\xbf"):
        stream = stream[3:]
    lines = re.split(rb"\r\n|\r|\n", stream)
    out: list[tuple[str | None, bytes]] = []
    event: str | None = None
    data: list[bytes] | None = None
    for line in [*lines, b""]:
        if line == b"":
            if data is not None:
                out.append((event, b"\n".join(data)))
            event, data = None, None
            continue
        if line.startswith(b":"):
            continue
        name, _, value = line.partition(b":")
        value = value[1:] if value.startswith(b" ") else value
        if name == b"data":
            data = [*(data or []), value]
        elif name == b"event":
            event = value.decode("utf-8", "replace") or None
    return out


@settings(max_examples=300, deadline=None, database=None)
@given(stream=_stream, cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=4))
def test_property_matches_a_line_by_line_reference(stream: bytes, cuts: list[int]) -> None:
    assert data_only(decode_all(stream, *sorted(min(c, len(stream)) for c in cuts))) == reference_parse(stream)
