"""Getting alerts to people: a Slack-compatible webhook and, in serve mode, a line on stderr.

Why a separate task with its own queue: a webhook that hangs for 30 s (or a Slack outage)
must never slow a single model call. Alerts reach this sink through a lossless bus
subscription; a dispatcher task dedupes them and hands webhook posts to a poster task,
which retries with exponential backoff (honouring ``Retry-After`` on 429) and gives up
after ``webhook_retries`` retries. Dedupe is by (kind, key) within ``dedupe_window_s``:
a looping agent raises the same alert every few seconds, a pager should ring once; the
next alert that does get through says how many were folded into it.

Secrets never leave in an alert: every text is scrubbed of the configured provider and
gateway keys and of anything shaped like an API key or bearer token.
"""

from __future__ import annotations

import asyncio
import re
import sys
import time
from typing import Any, Iterable, TextIO

from agentdeck.bus import Alert, Bus, Policy, Subscription
from agentdeck.config import AlertsConfig, Config

_COLORS = {"P0": "#d40e0d", "P1": "#e8912d", "P2": "#439fe0"}
_LABELS = {"P0": "P0 act now", "P1": "P1 soon", "P2": "P2 info"}
# API-key and token shapes: OpenAI/Anthropic keys, our session keys, bearer tokens.
_SECRET_SHAPES = re.compile(
    r"(sk-(?:ant-|proj-)?[A-Za-z0-9_\-]{8,}|adk-s-[A-Za-z0-9_\-]{8,}|(?i:bearer)\s+[A-Za-z0-9._\-]{8,})"
)
_QUEUE_MAX = 1000


def secrets_of(cfg: Config) -> list[str]:
    """Every secret in the config that must never appear in an alert."""
    out = [k.key for k in cfg.keys] + [p.api_key for p in cfg.providers.values()] + [cfg.gateway.admin_token]
    return [s for s in out if s and len(s) >= 4]


class AlertSink:
    """Subscribes to Alert events; posts them to the webhook and prints them on stderr."""

    def __init__(self, cfg: AlertsConfig, bus: Bus, *, stderr: bool = False, redact: Iterable[str] = (),
                 backoff_s: float = 0.5, timeout_s: float = 5.0, clock: Any = time.time,
                 stream: TextIO | None = None) -> None:
        self.cfg = cfg
        self.bus = bus
        self.stderr = stderr
        self.backoff_s = backoff_s
        self.timeout_s = timeout_s
        self.clock = clock
        self._stream = stream
        self._redact = sorted({s for s in redact if s}, key=len, reverse=True)
        self._sub: Subscription | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._outbox: asyncio.Queue[dict[str, Any]] | None = None
        self._last: dict[tuple[str, str | None], float] = {}
        self._folded: dict[tuple[str, str | None], int] = {}
        self.sent = 0
        self.failed = 0
        self.suppressed = 0
        self.dropped = 0
        self.attempts = 0

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        self._sub = self.bus.subscribe("alerts", maxlen=10_000, policy=Policy.LOSSLESS, types={Alert.type})
        self._outbox = asyncio.Queue(_QUEUE_MAX)
        self._tasks = [asyncio.create_task(self._dispatch(), name="alerts-dispatch")]
        if self.cfg.webhook_url:
            self._tasks.append(asyncio.create_task(self._post_loop(), name="alerts-webhook"))

    async def stop(self, drain_s: float = 2.0) -> None:
        """Handle what is queued, give in-flight posts ``drain_s`` to finish, then stop."""
        if self._sub is not None:
            self._handle_all(self._sub.drain())
        if self._outbox is not None and len(self._tasks) > 1:
            try:
                await asyncio.wait_for(self._outbox.join(), drain_s)
            except asyncio.TimeoutError:
                pass
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            try:
                await t
            except asyncio.CancelledError:
                pass
        self._tasks = []
        if self._sub is not None:
            self._sub.close()
            self._sub = None

    # -- dispatch --------------------------------------------------------------------------
    async def _dispatch(self) -> None:
        assert self._sub is not None
        while True:
            batch = await self._sub.get_batch(timeout=1.0)
            self._handle_all(batch)

    def _handle_all(self, events: list[Any]) -> None:
        for ev in events:
            if isinstance(ev, Alert):
                self.handle(ev)

    def handle(self, ev: Alert) -> bool:
        """Dedupe, then print and queue for the webhook. Returns False when folded into an earlier alert."""
        now = self.clock()
        ident = (ev.kind, ev.key)
        last = self._last.get(ident)
        if last is not None and now - last < self.cfg.dedupe_window_s:
            self.suppressed += 1
            self._folded[ident] = self._folded.get(ident, 0) + 1
            return False
        self._last[ident] = now
        folded = self._folded.pop(ident, 0)
        text = self.scrub(ev.message)
        if folded:
            text += f" (+{folded} similar in the last {self.cfg.dedupe_window_s:.0f}s)"
        if self.stderr:
            self._print_line(ev, text)
        if self._outbox is not None and self.cfg.webhook_url:
            payload = self.payload(ev, text)
            try:
                self._outbox.put_nowait(payload)
            except asyncio.QueueFull:
                self.dropped += 1
        return True

    def scrub(self, text: str) -> str:
        for s in self._redact:
            text = text.replace(s, "[redacted]")
        return _SECRET_SHAPES.sub("[redacted]", text)

    def _print_line(self, ev: Alert, text: str) -> None:
        when = time.strftime("%H:%M:%S", time.localtime(ev.ts))
        key = f" key={self.scrub(ev.key)}" if ev.key else ""
        stream = self._stream or sys.stderr
        try:
            print(f"agentdeck ALERT {ev.severity} {ev.kind}{key} {when}: {text}", file=stream, flush=True)
        except (OSError, ValueError):
            pass

    def payload(self, ev: Alert, text: str) -> dict[str, Any]:
        """Slack incoming-webhook JSON (also accepted by Mattermost and Discord's /slack endpoint)."""
        key = self.scrub(ev.key) if ev.key else None
        headline = f"[{ev.severity}] agentdeck {ev.kind}" + (f" ({key})" if key else "")
        fields = [{"title": "severity", "value": _LABELS.get(ev.severity, ev.severity), "short": True},
                  {"title": "kind", "value": ev.kind, "short": True}]
        if key:
            fields.append({"title": "key", "value": key, "short": True})
        return {
            "text": f"{headline}: {text}",
            "attachments": [{
                "color": _COLORS.get(ev.severity, "#888888"),
                "title": headline,
                "text": text,
                "fields": fields,
                "footer": "agentdeck",
                "ts": int(ev.ts),
            }],
        }

    # -- webhook ---------------------------------------------------------------------------
    async def _post_loop(self) -> None:
        import aiohttp

        assert self._outbox is not None
        timeout = aiohttp.ClientTimeout(total=self.timeout_s)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while True:
                payload = await self._outbox.get()
                try:
                    ok = await self._post(session, payload)
                    if ok:
                        self.sent += 1
                    else:
                        self.failed += 1
                finally:
                    self._outbox.task_done()

    async def _post(self, session: Any, payload: dict[str, Any]) -> bool:
        import aiohttp

        for attempt in range(self.cfg.webhook_retries + 1):
            self.attempts += 1
            wait = self.backoff_s * (2 ** attempt)
            try:
                async with session.post(self.cfg.webhook_url, json=payload) as resp:
                    if resp.status < 300:
                        return True
                    if resp.status != 429 and resp.status < 500 and resp.status != 408:
                        return False  # the webhook refuses this payload: retrying will not help
                    ra = resp.headers.get("Retry-After")
                    if ra:
                        try:
                            wait = min(max(float(ra), 0.0), 30.0)
                        except ValueError:
                            pass
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
                pass
            if attempt < self.cfg.webhook_retries:
                await asyncio.sleep(min(wait, 30.0))
        return False
