"""The call log: one line per finished call and per stop, resume and alert.

Human lines by default (what an on-call engineer tails), JSON lines with ``--log-format json``
(what Loki, Vector, Datadog or ``jq`` take). The fields are the same in both: when, request id,
key and session, the model asked for and the model used, tier, provider, status, tokens, cost,
latency, error code. Never a secret (known secrets and anything shaped like a key are scrubbed
from every free text), never a prompt or completion unless ``[gateway] log_bodies`` is on.
"""

from __future__ import annotations

import re
import time
from typing import Any, Iterable, Sequence, TextIO

import orjson

from agentdeck.bus import (Alert, BudgetDowngrade, Escalated, Event, LimitChanged, ProviderThrottled, RequestCompleted,
                           StopChanged)

CALL_TYPES = frozenset({RequestCompleted.type})
CONTROL_TYPES = frozenset({StopChanged.type, Alert.type})
VERBOSE_TYPES = frozenset({LimitChanged.type, ProviderThrottled.type, Escalated.type, BudgetDowngrade.type})

_SECRET_SHAPES = re.compile(
    r"(sk-(?:ant-|proj-)?[A-Za-z0-9_\-]{8,}|adk-s-[A-Za-z0-9_\-]{8,}|(?i:bearer)\s+[A-Za-z0-9._\-]{8,})")
_CODE = re.compile(r"[a-z][a-z0-9_]*")
_NOT_WORD = re.compile(r"[^a-z0-9]+")


def error_code(error: str | None) -> str | None:
    """A short stable code for an error text: the gateway's own codes as they are
    (``budget_exceeded``, ``agentdeck_stopped``), others from the words before any detail
    (``upstream 429`` -> ``upstream_429``, ``upstream error: ConnectError`` -> ``upstream_error``)."""
    if not error:
        return None
    if _CODE.fullmatch(error):
        return error
    head = error.split(":", 1)[0].lower()
    return _NOT_WORD.sub("_", head).strip("_")[:48] or None


class Clock:
    """A line's timestamps, with the part down to the second formatted once per second.

    Why: at 1,000+ calls/s, ``strftime`` and ``datetime.isoformat`` per line were most of the
    log thread's work (and the log thread shares the GIL with the request path)."""

    __slots__ = ("_utc_sec", "_utc", "_local_sec", "_local")

    def __init__(self) -> None:
        self._utc_sec = self._local_sec = -1
        self._utc = self._local = ""

    def iso(self, ts: float) -> str:
        """RFC 3339 in UTC with milliseconds: sorts as text, parses everywhere."""
        sec = int(ts)
        if sec != self._utc_sec:
            self._utc_sec, self._utc = sec, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
        return f"{self._utc}.{int(ts * 1000) % 1000:03d}Z"

    def local(self, ts: float) -> str:
        """Local time with milliseconds, for the human lines."""
        sec = int(ts)
        if sec != self._local_sec:
            self._local_sec, self._local = sec, time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(sec))
        return f"{self._local}.{int(ts * 1000) % 1000:03d}"


class Scrubber:
    """Removes known secrets and key-shaped strings from text bound for a log."""

    def __init__(self, secrets: Iterable[str]) -> None:
        self._secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def __call__(self, text: str | None) -> str | None:
        if text is None:
            return None
        for s in self._secrets:
            if s in text:
                text = text.replace(s, "[redacted]")
        return _SECRET_SHAPES.sub("[redacted]", text)


def record(ev: Event, scrub: Scrubber, clock: Clock, log_bodies: bool = False) -> dict[str, Any] | None:
    """The log record of one event (the JSON line's fields), or None for events the log skips."""
    iso_ts = clock.iso
    if isinstance(ev, RequestCompleted):
        rec: dict[str, Any] = {
            "ts": iso_ts(ev.ts), "event": "call", "request_id": ev.id, "key": ev.key, "session": ev.session,
            "model_requested": ev.model_requested, "model": ev.model, "tier": ev.tier, "provider": ev.provider or None,
            "endpoint": ev.endpoint, "stream": ev.stream, "status": ev.status,
            "input_tokens": ev.input_tokens, "output_tokens": ev.output_tokens,
            "cache_read_tokens": ev.cache_read_tokens, "cache_write_tokens": ev.cache_write_tokens,
            "cost_usd": round(ev.cost_usd, 6), "estimated": ev.estimated, "latency_ms": round(ev.latency_ms, 1),
            "attempts": ev.attempts, "fallback_from": ev.fallback_from,
            "error_code": error_code(ev.error), "error": scrub(ev.error),
        }
        if log_bodies:
            rec["request_body"] = scrub(ev.request_body)
            rec["response_body"] = scrub(ev.response_body)
        return rec
    if isinstance(ev, StopChanged):
        return {"ts": iso_ts(ev.ts), "event": "stop" if ev.stopped else "resume", "key": ev.key,
                "reason": scrub(ev.reason), "actor": ev.actor}
    if isinstance(ev, Alert):
        return {"ts": iso_ts(ev.ts), "event": "alert", "severity": ev.severity, "kind": ev.kind, "key": ev.key,
                "message": scrub(ev.message)}
    if isinstance(ev, LimitChanged):
        return {"ts": iso_ts(ev.ts), "event": "limit", "provider": ev.provider, "rps_limit": round(ev.rps_limit, 2),
                "slots_limit": ev.slots_limit, "reason": ev.reason}
    if isinstance(ev, ProviderThrottled):
        return {"ts": iso_ts(ev.ts), "event": "throttled", "provider": ev.provider, "status": ev.status}
    if isinstance(ev, Escalated):
        return {"ts": iso_ts(ev.ts), "event": "escalated", "request_id": ev.request_id, "from_tier": ev.from_tier,
                "to_tier": ev.to_tier, "reason": ev.reason}
    if isinstance(ev, BudgetDowngrade):
        return {"ts": iso_ts(ev.ts), "event": "downgrade", "active": ev.active, "share": round(ev.share, 3),
                "budget": ev.budget}
    return None


def call_line(ev: RequestCompleted, when: str) -> str:
    """A finished call's human line, straight from the event (the one line written per call, so no
    record dict on the way)."""
    who = ev.key + (f"/{ev.session}" if ev.session else "")
    asked = f" (asked {ev.model_requested})" if ev.model_requested != ev.model else ""
    line = (f"{when} call   {ev.id} {who} {ev.model}{asked} tier={ev.tier or '-'} {ev.provider or '-'} {ev.status} "
            f"in={ev.input_tokens} out={ev.output_tokens} ${round(ev.cost_usd, 6):.4f}{'~' if ev.estimated else ''} "
            f"{round(ev.latency_ms, 1):.0f}ms")
    code = error_code(ev.error)
    return f"{line} error={code}" if code else line


def human_line(rec: dict[str, Any], when: str) -> str:
    """One aligned, greppable line for a terminal (calls: :func:`call_line`)."""
    kind = rec["event"]
    if kind in ("stop", "resume"):
        scope = f"key {rec['key']}" if rec["key"] else "all traffic"
        reason = f": {rec['reason']}" if kind == "stop" and rec["reason"] else ""
        return f"{when} {kind.upper():<6} {scope} (by {rec['actor']}){reason}"
    if kind == "alert":
        key = f" key={rec['key']}" if rec["key"] else ""
        return f"{when} ALERT  {rec['severity']} {rec['kind']}{key}: {rec['message']}"
    rest = " ".join(f"{k}={v}" for k, v in rec.items() if k not in ("ts", "event"))
    return f"{when} {kind:<6} {rest}"


class CallLog:
    """A sink that writes the log lines of each batch to ``stream`` in one write."""

    def __init__(self, stream: TextIO, *, fmt: str = "human", secrets: Iterable[str] = (), log_bodies: bool = False,
                 close_stream: bool = False) -> None:
        if fmt not in ("human", "json"):
            raise ValueError(f"log format must be 'human' or 'json', not {fmt!r}")
        self.stream = stream
        self.fmt = fmt
        self.scrub = Scrubber(secrets)
        self.log_bodies = log_bodies
        self.close_stream = close_stream
        self.lines = 0
        self._clock = Clock()

    def handle(self, events: Sequence[Event], dropped: int) -> None:
        out = []
        clock = self._clock
        human = self.fmt == "human"
        for ev in events:
            if human and type(ev) is RequestCompleted:
                out.append(call_line(ev, clock.local(ev.ts)))
                continue
            rec = record(ev, self.scrub, clock, self.log_bodies)
            if rec is None:
                continue
            out.append(human_line(rec, clock.local(ev.ts)) if human else orjson.dumps(rec).decode())
        if dropped:
            now = time.time()
            note = {"ts": clock.iso(now), "event": "log_dropped", "dropped": dropped}
            out.append(orjson.dumps(note).decode() if self.fmt == "json"
                       else f"{clock.local(now)} LOG    {dropped} events not logged (the log consumer was too slow)")
        if out:
            self.stream.write("\n".join(out) + "\n")
            self.stream.flush()
            self.lines += len(out)

    def close(self) -> None:
        try:
            self.stream.flush()
        finally:
            if self.close_stream:
                self.stream.close()
