"""Small helpers the codecs share: ids, data URLs, the text of a block list, JSON in and out."""

from __future__ import annotations

import itertools
import os
from typing import Any

import orjson

_PREFIX = os.urandom(4).hex()
_COUNTER = itertools.count(1)


def new_id(prefix: str) -> str:
    """A unique id in a protocol's style (``msg_...``, ``call_...``); no syscall per id."""
    return f"{prefix}{_PREFIX}{next(_COUNTER):012x}"


def data_url(media_type: str, data: str) -> str:
    return f"data:{media_type or 'application/octet-stream'};base64,{data}"


def parse_data_url(url: str) -> tuple[str, str] | None:
    """(media type, base64 data) of a ``data:...;base64,`` URL, None for any other URL."""
    if not url.startswith("data:"):
        return None
    head, sep, data = url.partition(",")
    if not sep or not head.endswith(";base64"):
        return None
    return head[5:-7], data


def text_of_blocks(content: Any) -> str:
    """A string, or the text of a list of text blocks (other blocks contribute nothing)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(b["text"] for b in content if isinstance(b, dict) and isinstance(b.get("text"), str))
    if isinstance(content, dict):
        return orjson.dumps(content).decode()
    return ""


def json_args(arguments: str) -> dict[str, Any]:
    """A tool call's JSON arguments as an object ({} when they are not one: the provider judges)."""
    try:
        v = orjson.loads(arguments or "{}")
    except orjson.JSONDecodeError:
        return {}
    return v if isinstance(v, dict) else {"value": v}
