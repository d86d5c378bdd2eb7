"""How many input tokens a request body is, before the provider says: for the cap and the reservation.

Why not just bytes / 4: base64 images, documents and audio are billed by what they
show or last, not by their encoded length. A 900 KB screenshot is about 1,600 tokens to
Anthropic, not 300,000; counting it as text refused it as too large and reserved two
hundred times its cost. Text stays at four bytes a token (the usual rule of thumb).

The fast path is a few ``bytes.__contains__`` calls: only a body that carries an
inline payload is walked.
"""

from __future__ import annotations

import base64
import binascii
import math
import struct
from typing import Any

BYTES_PER_TOKEN = 4
IMAGE_TOKENS_UNKNOWN = 1600
"""An image whose size cannot be read: Anthropic's cost of a full-size (~1.15 MP) image."""
IMAGE_MAX_EDGE = 1568
IMAGE_MAX_PIXELS = 1_150_000
DOCUMENT_TOKENS_PER_PAGE = 3000
"""A PDF page as Anthropic bills it, text and page image together (1,500-3,000 per page)."""
AUDIO_TOKENS_PER_S = 10
_HEAD_CHARS = 64 * 1024  # base64 characters decoded to find an image's size (its header is near the start)


def estimate_input_tokens(raw: bytes, body: Any) -> int:
    """Tokens of the prompt: text at 4 bytes a token, inline media at what the provider bills."""
    find = raw.find
    # Inline media shows itself by a data URL's ";base64,", Anthropic's "base64" source, OpenAI's
    # "input_audio" or Gemini's "inlineData"/"inline_data": four scans (b"base64" covers both of the first),
    # with find(), because in CPython `sub in bytes` first tries `sub` as a byte value, raising and
    # clearing a TypeError every time.
    if (find(b"base64") < 0 and find(b'"input_audio"') < 0 and find(b'"inlineData"') < 0
            and find(b'"inline_data"') < 0):
        return (len(raw) + BYTES_PER_TOKEN - 1) // BYTES_PER_TOKEN
    media_chars = 0
    media_tokens = 0
    stack: list[Any] = [body]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            mime = _mime_of(node)
            for key, value in node.items():
                if isinstance(value, str):
                    found = _media(key, value, mime)
                    if found is not None:
                        media_chars += len(value)
                        media_tokens += found
                elif isinstance(value, (dict, list)):
                    stack.append(value)
        elif isinstance(node, list):
            stack.extend(v for v in node if isinstance(v, (dict, list)))
    text_bytes = max(len(raw) - media_chars, 0)
    return (text_bytes + BYTES_PER_TOKEN - 1) // BYTES_PER_TOKEN + media_tokens


def _mime_of(node: dict[str, Any]) -> str | None:
    for key in ("media_type", "mime_type", "mimeType"):
        v = node.get(key)
        if isinstance(v, str):
            return v
    fmt = node.get("format")
    if isinstance(fmt, str) and "data" in node:
        return f"audio/{fmt}"
    return None


def _media(key: str, value: str, mime: str | None) -> int | None:
    """Tokens of an inline payload, or None when ``value`` is text."""
    if value.startswith("data:"):
        head, sep, payload = value.partition(",")
        if not sep or not head.endswith(";base64"):
            return None
        return payload_tokens(head[5:-7], payload)
    if key == "data" and mime is not None and len(value) >= 64:
        return payload_tokens(mime, value)
    return None


def payload_tokens(mime: str, b64: str) -> int:
    """Tokens of one base64 payload of type ``mime``."""
    if mime.startswith("image/"):
        size = image_size(_decode(b64[:_HEAD_CHARS]))
        return image_tokens(*size) if size else IMAGE_TOKENS_UNKNOWN
    if mime == "application/pdf":
        data = _decode(b64)
        pages = data.count(b"/Type /Page") + data.count(b"/Type/Page")
        pages -= data.count(b"/Type /Pages") + data.count(b"/Type/Pages")
        return max(pages, 1) * DOCUMENT_TOKENS_PER_PAGE
    if mime.startswith("audio/"):
        decoded_bytes = len(b64) * 3 // 4
        bytes_per_s = 48_000 if mime.endswith(("wav", "pcm16", "x-wav")) else 16_000
        return max(1, math.ceil(decoded_bytes / bytes_per_s * AUDIO_TOKENS_PER_S))
    return max(1, len(b64) * 3 // 4 // BYTES_PER_TOKEN)  # text-like documents: their decoded bytes


def image_tokens(width: int, height: int) -> int:
    """Anthropic's rule: about width*height/750 tokens after scaling to 1568 px and ~1.15 MP."""
    if width <= 0 or height <= 0:
        return IMAGE_TOKENS_UNKNOWN
    scale = min(1.0, IMAGE_MAX_EDGE / max(width, height), math.sqrt(IMAGE_MAX_PIXELS / (width * height)))
    return max(1, math.ceil(width * scale * height * scale / 750))


def _decode(b64: str) -> bytes:
    cut = len(b64) - len(b64) % 4
    try:
        return base64.b64decode(b64[:cut], validate=False)
    except (binascii.Error, ValueError):
        return b""


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG, GIF, JPEG or WebP header, None when unreadable."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        return struct.unpack(">II", data[16:24])
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        return struct.unpack("<HH", data[6:10])
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return _webp_size(data)
    if data[:2] == b"\xff\xd8":
        return _jpeg_size(data)
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    i = 2
    n = len(data)
    while i + 9 < n:
        if data[i] != 0xFF:
            i += 1
            continue
        marker = data[i + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7 or marker == 0xFF:
            i += 1 if marker == 0xFF else 2
            continue
        length = struct.unpack(">H", data[i + 2 : i + 4])[0]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", data[i + 5 : i + 9])
            return width, height
        i += 2 + length
    return None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8X" and len(data) >= 30:
        w = int.from_bytes(data[24:27], "little") + 1
        h = int.from_bytes(data[27:30], "little") + 1
        return w, h
    if chunk == b"VP8 " and len(data) >= 30:
        w, h = struct.unpack("<HH", data[26:30])
        return w & 0x3FFF, h & 0x3FFF
    if chunk == b"VP8L" and len(data) >= 25:
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    return None
