"""How fast the shared SSE decoder reads provider streams: ``python -m agentdeck.bench.sse``.

Why measured: the gateway runs every streamed byte through `agentdeck.wire.sse.SSEDecoder`,
so its cost is added to every streamed call. The streams are typical OpenAI chat chunks
(one `data:` line each) and Anthropic deltas (`event:` + `data:`), LF and CRLF framed, fed
one event per chunk (as an HTTP client usually hands them over) and in 16 KiB chunks (a
burst). Process CPU time, best of 5; a benchmark, not a test: numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import json
import time
import timeit
from typing import Any

from agentdeck.wire.sse import SSEDecoder, encode_event

_BIG_CHUNK = 16 * 1024


def openai_stream(n: int, crlf: bool) -> list[bytes]:
    """n chat.completion.chunk events and `[DONE]`, compact JSON as OpenAI sends it."""
    parts = [encode_event(json.dumps({
        "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini",
        "choices": [{"index": 0, "delta": {"content": f"tok{i} "}, "finish_reason": None}]}, separators=(",", ":")), crlf=crlf)
        for i in range(n)]
    parts.append(encode_event("[DONE]", crlf=crlf))
    return parts


def anthropic_stream(n: int, crlf: bool) -> list[bytes]:
    """n content_block_delta events, spaced JSON as Anthropic sends it."""
    return [encode_event(json.dumps({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": f"tok{i} "}}),
                         "content_block_delta", crlf=crlf) for i in range(n)]


def measure(parts: list[bytes], big_chunks: bool) -> dict[str, float]:
    """Events/s and MB/s decoding `parts` (fed per event, or in 16 KiB chunks)."""
    if big_chunks:
        blob = b"".join(parts)
        chunks = [blob[i : i + _BIG_CHUNK] for i in range(0, len(blob), _BIG_CHUNK)]
    else:
        chunks = parts

    def decode() -> int:
        decoder = SSEDecoder()
        n = 0
        for c in chunks:
            n += len(decoder.feed(c))
        return n + len(decoder.flush())

    if decode() != len(parts):
        raise RuntimeError("the decoder lost events")
    seconds = min(timeit.Timer(decode, timer=time.process_time).repeat(number=20, repeat=5)) / 20
    return {"events_per_s": len(parts) / seconds, "mb_per_s": sum(map(len, parts)) / seconds / 1e6}


def run_sse_bench(events: int = 2000) -> list[dict[str, Any]]:
    rows = []
    for name, make in (("openai", openai_stream), ("anthropic", anthropic_stream)):
        for crlf in (False, True):
            parts = make(events, crlf)
            for big in (False, True):
                rows.append({"stream": name, "framing": "CRLF" if crlf else "LF", "chunks": "16 KiB" if big else "per event",
                             **measure(parts, big)})
    return rows


def format_sse_report(rows: list[dict[str, Any]]) -> str:
    lines = ["SSE decoder (agentdeck.wire.sse), process CPU time, best of 5"]
    for r in rows:
        lines.append(f"  {r['stream']:9} {r['framing']:4} chunks {r['chunks']:9}  {r['events_per_s'] / 1e6:5.2f} M events/s"
                     f"  {r['mb_per_s']:5.0f} MB/s")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m agentdeck.bench.sse", description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=2000, help="events per stream (default 2000)")
    print(format_sse_report(run_sse_bench(ap.parse_args().events)))


if __name__ == "__main__":
    main()
