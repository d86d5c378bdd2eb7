"""What the console remembers between frames: bounded, cheap to update, no Textual in here.

Why separate from the widgets: events are ingested for every pane on every drain, visible
or not (a hidden Providers pane must still record its graph history), while rendering only
happens for the pane on screen. Keeping the state in plain objects makes the ingest path a
few dict and deque operations, and lets tests and the benchmark feed it directly.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from agentdeck.bus import Alert, BudgetDowngrade, Event, RequestCompleted, StatsTick, StopChanged
from agentdeck.gateway.admin import GatewayStatus, KeySpendView, SessionView

TIERS = ("fast", "balanced", "smart")


def fmt_usd(v: float) -> str:
    """Dollars with precision that suits the size: $0.0042, $1.27, $312."""
    a = abs(v)
    sign = "-" if v < 0 and round(a, 4) > 0 else ""
    if a >= 100:
        return f"{sign}${a:,.0f}"
    if a >= 1:
        return f"{sign}${a:,.2f}"
    if a >= 0.01:
        return f"{sign}${a:.3f}"
    return f"{sign}${a:.4f}"


def fmt_tokens(n: int) -> str:
    if n >= 1_000_000:
        return f"{n / 1_000_000:.1f}M"
    if n >= 10_000:
        return f"{n / 1000:.0f}k"
    if n >= 1000:
        return f"{n / 1000:.1f}k"
    return str(n)


def fmt_ms(ms: float) -> str:
    return f"{ms / 1000:.1f}s" if ms >= 10_000 else f"{ms:.0f}ms"


def fmt_clock(ts: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(ts))


def fmt_duration(s: float) -> str:
    if s < 90:
        return f"{s:.0f}s"
    if s < 5400:
        return f"{s / 60:.0f}m"
    if s < 48 * 3600:
        return f"{s / 3600:.1f}h"
    return f"{s / 86400:.1f}d"


def request_from_row(row: dict[str, Any]) -> RequestCompleted:
    """A stored request (``/admin/requests`` or the store) as the event the live table shows."""
    ev = RequestCompleted(
        id=str(row.get("id", "")), key=str(row.get("key") or ""), session=row.get("session"),
        protocol=str(row.get("protocol") or ""), endpoint=str(row.get("endpoint") or ""),
        model_requested=str(row.get("model_requested") or ""), model=str(row.get("model") or ""),
        provider=str(row.get("provider") or ""), tier=row.get("tier"), rule=row.get("rule"),
        status=int(row.get("status") or 0), stream=bool(row.get("stream")),
        input_tokens=int(row.get("input_tokens") or 0), output_tokens=int(row.get("output_tokens") or 0),
        cost_usd=float(row.get("cost_usd") or 0.0), baseline_cost_usd=float(row.get("baseline_cost_usd") or 0.0),
        latency_ms=float(row.get("latency_ms") or 0.0), estimated=bool(row.get("estimated")),
        error=row.get("error"), attempts=int(row.get("attempts") or 1), fallback_from=row.get("fallback_from"),
        escalations=list(row.get("escalations") or []), ts=float(row.get("ts") or 0.0),
    )
    return ev


class CallRow:
    """One line of the live table. Formatted lazily: at 1,000 calls/s most rows scroll out of the
    bounded table before anyone sees them, so cells are built on first render, once."""

    __slots__ = ("ev", "_cells", "_hay")

    def __init__(self, ev: RequestCompleted) -> None:
        self.ev = ev
        self._cells: tuple[str, ...] | None = None
        self._hay: str | None = None

    @property
    def cells(self) -> tuple[str, ...]:
        if self._cells is None:
            self._cells = format_cells(self.ev)
        return self._cells

    @property
    def haystack(self) -> str:
        if self._hay is None:
            ev = self.ev
            self._hay = " ".join((ev.session or "", ev.key, ev.tier or "", ev.model, ev.model_requested, ev.rule or "",
                                  str(ev.status), ev.provider, ev.error or "", ev.id)).lower()
        return self._hay

    @property
    def failed(self) -> bool:
        return self.ev.status >= 400 or self.ev.error is not None


COLUMNS: tuple[tuple[str, str, int, int], ...] = (
    # key, title, width, priority (lower = dropped last when the terminal is narrow)
    ("time", "time", 8, 0),
    ("who", "key / session", 18, 0),
    ("tier", "tier", 8, 1),
    ("model", "model", 17, 0),
    ("rule", "rule", 14, 3),
    ("status", "status", 6, 0),
    ("latency", "latency", 7, 1),
    ("tokens", "tokens in/out", 13, 2),
    ("cost", "cost", 8, 0),
)


def format_cells(ev: RequestCompleted) -> tuple[str, ...]:
    """The table cells of one call, in ``COLUMNS`` order."""
    tier = ev.tier or "-"
    if ev.escalations:
        tier += "↑"
    return (
        fmt_clock(ev.ts), ev.session or ev.key, tier, ev.model or ev.model_requested, ev.rule or "-",
        str(ev.status) if ev.status else "-", fmt_ms(ev.latency_ms),
        f"{fmt_tokens(ev.input_tokens)}/{fmt_tokens(ev.output_tokens)}",
        fmt_usd(ev.cost_usd) + ("~" if ev.estimated else ""),
    )


def make_row(ev: RequestCompleted) -> CallRow:
    return CallRow(ev)


def matches(row: CallRow, query: str) -> bool:
    """Every word of the filter must appear somewhere in the row (``opus 429``, ``claude-code fast``)."""
    return all(w in row.haystack for w in query.lower().split())


class CallLog:
    """The newest calls (bounded) plus running totals for the tier mix."""

    def __init__(self, max_rows: int) -> None:
        self.max_rows = max_rows
        self.rows: deque[CallRow] = deque(maxlen=max_rows)  # oldest first
        self.total = 0
        self.tiers: Counter[str] = Counter()
        self.failed = 0
        self.cost_usd = 0.0
        self.baseline_usd = 0.0
        self.recent_who: dict[str, float] = {}
        self.version = 0  # bumped on every change, so views know when to redraw

    def add(self, ev: RequestCompleted) -> CallRow:
        row = CallRow(ev)
        self.rows.append(row)
        self.total += 1
        self.tiers[ev.tier or "other"] += 1
        if ev.status >= 400 or ev.error is not None:
            self.failed += 1
        self.cost_usd += ev.cost_usd
        self.baseline_usd += ev.baseline_cost_usd
        self.recent_who[ev.session or ev.key] = ev.ts
        if len(self.recent_who) > 500:
            for k, _ in sorted(self.recent_who.items(), key=lambda kv: kv[1])[:250]:
                del self.recent_who[k]
        self.version += 1
        return row

    def seed(self, rows: list[dict[str, Any]]) -> None:
        """Merge stored history (``/admin/requests``) with what arrived live, by time, without counting it twice."""
        known = {r.ev.id for r in self.rows}
        merged = list(self.rows)
        for d in rows:
            if d.get("id") not in known:
                row = make_row(request_from_row(d))
                merged.append(row)
                who = row.ev.session or row.ev.key
                self.recent_who[who] = max(self.recent_who.get(who, 0.0), row.ev.ts)
        merged.sort(key=lambda r: r.ev.ts)
        self.rows.clear()
        self.rows.extend(merged[-self.max_rows:])
        self.version += 1

    def sessions_active(self, within_s: float = 300.0, now: float | None = None) -> list[str]:
        now = time.time() if now is None else now
        return sorted(k for k, t in self.recent_who.items() if t >= now - within_s)


@dataclass(slots=True)
class ProviderSeries:
    """Last minutes of one provider, one point per StatsTick."""

    maxlen: int
    t: deque[float] = field(default_factory=deque)
    rps_limit: deque[float] = field(default_factory=deque)
    rps: deque[float] = field(default_factory=deque)
    slots_limit: deque[float] = field(default_factory=deque)
    in_flight: deque[float] = field(default_factory=deque)
    throttled: deque[int] = field(default_factory=deque)  # 429s seen in that second
    last: dict[str, Any] = field(default_factory=dict)
    last_change: str = ""
    completed: int = 0  # calls finished since the previous tick
    rate_limited_seen: int | None = None

    def push(self, ts: float, snap: dict[str, Any], rps: float) -> None:
        total = int(snap.get("rate_limited_total", 0) or 0)
        new429 = 0 if self.rate_limited_seen is None else max(0, total - self.rate_limited_seen)
        self.rate_limited_seen = total
        # In cluster mode the slot limit is the cluster's: graph it against the slots held across the cluster.
        inflight = snap.get("cluster_in_flight", snap.get("in_flight", 0))
        for dq, v in ((self.t, ts), (self.rps_limit, float(snap.get("rps_limit", 0.0) or 0.0)), (self.rps, rps),
                      (self.slots_limit, float(snap.get("slots_limit", 0) or 0)),
                      (self.in_flight, float(inflight or 0)), (self.throttled, new429)):
            dq.append(v)  # type: ignore[attr-defined]
            if len(dq) > self.maxlen:
                dq.popleft()
        self.last = snap


class ProvidersModel:
    """Per-provider graph history, fed by ticks (limits, in flight) and finished calls (actual requests/s)."""

    def __init__(self, window_s: int = 300) -> None:
        self.window_s = window_s
        self.series: dict[str, ProviderSeries] = {}
        self.last_tick_ts: float | None = None
        self.version = 0

    def _get(self, name: str) -> ProviderSeries:
        s = self.series.get(name)
        if s is None:
            s = self.series[name] = ProviderSeries(self.window_s)
        return s

    def on_request(self, ev: RequestCompleted) -> None:
        if ev.provider:
            self._get(ev.provider).completed += 1

    def on_tick(self, tick: StatsTick) -> None:
        dt = 1.0 if self.last_tick_ts is None else max(0.2, min(5.0, tick.ts - self.last_tick_ts))
        self.last_tick_ts = tick.ts
        for name, snap in tick.providers.items():
            s = self._get(name)
            s.push(tick.ts, snap, s.completed / dt)
            s.completed = 0
        self.version += 1

    def on_limit(self, name: str, reason: str, rps: float, slots: int, ts: float) -> None:
        self._get(name).last_change = f"{fmt_clock(ts)} {reason} → {rps:.1f}/s"
        self.version += 1


@dataclass(slots=True)
class ProcessLine:
    """One gateway process of the cluster as the console shows it (cells built once per tick)."""

    id: str
    who: str
    address: str
    stopped: bool
    in_flight: int
    rps: float
    up_s: float
    seen_s: float
    this: bool


class ClusterModel:
    """The cluster's processes from the latest stats tick (cluster mode only; local ticks carry none)."""

    def __init__(self) -> None:
        self.name = ""
        self.redis = ""
        self.up = True
        self.error: str | None = None
        self.lines: list[ProcessLine] = []
        self.in_flight = 0
        self.rps = 0.0
        self.seen = False  # a tick with a cluster section arrived: the console is on a cluster
        self.version = 0

    def on_tick(self, cluster: dict[str, Any] | None) -> None:
        if not cluster:
            return
        self.seen = True
        self.name, self.redis = str(cluster.get("name") or ""), str(cluster.get("redis") or "")
        self.up, self.error = bool(cluster.get("up", True)), cluster.get("error")
        self.in_flight, self.rps = int(cluster.get("in_flight") or 0), float(cluster.get("rps") or 0.0)
        read_at, this = float(cluster.get("read_at") or 0.0), cluster.get("this")
        self.lines = [ProcessLine(
            id=str(p.get("id") or ""), who=f"{p.get('host') or '?'}:{p.get('pid') or '?'}",
            address=str(p.get("address") or "-"), stopped=bool(p.get("stopped")), in_flight=int(p.get("in_flight") or 0),
            rps=float(p.get("rps") or 0.0), up_s=max(0.0, read_at - float(p.get("started") or read_at)),
            seen_s=max(0.0, read_at - float(p.get("last_seen") or read_at)), this=p.get("id") == this)
            for p in cluster.get("processes") or []]
        self.version += 1


@dataclass(slots=True)
class FeedItem:
    ts: float
    severity: str  # P0 / P1 / P2 / STOP / INFO
    text: str


class BudgetModel:
    """Spend history (for the projection), the alerts feed and the kill switch state."""

    def __init__(self, window_s: float = 300.0, feed_len: int = 200) -> None:
        self.window_s = window_s
        self.points: deque[tuple[float, float, float]] = deque()  # (ts, hour_usd, day_usd)
        self.tick: StatsTick | None = None
        self.feed: deque[FeedItem] = deque(maxlen=feed_len)
        self.alerts: deque[Alert] = deque(maxlen=feed_len)
        self.keys: dict[str, KeySpendView] = {}
        self.sessions: dict[str, SessionView] = {}
        self.stop_reason: str | None = None
        self.stop_since: float | None = None
        self.stop_actor: str | None = None
        self.stopped_keys: dict[str, Any] = {}
        self.downgrade: BudgetDowngrade | None = None
        self.version = 0

    def on_tick(self, t: StatsTick) -> None:
        self.tick = t
        self.points.append((t.ts, t.hour_usd, t.day_usd))
        while self.points and self.points[0][0] < t.ts - self.window_s:
            self.points.popleft()
        self.version += 1

    def on_event(self, ev: Event) -> None:
        if isinstance(ev, Alert):
            self.alerts.append(ev)
            who = f" [{ev.key}]" if ev.key else ""
            self.feed.append(FeedItem(ev.ts, ev.severity, f"{ev.kind}{who}: {ev.message}"))
        elif isinstance(ev, StopChanged):
            scope = "all traffic" if ev.key is None else f"'{ev.key}'"
            if ev.stopped:
                self.feed.append(FeedItem(ev.ts, "STOP", f"STOPPED {scope} by {ev.actor}: {ev.reason or ''}"))
                if ev.key is None:
                    self.stop_reason, self.stop_since, self.stop_actor = ev.reason, ev.ts, ev.actor
                else:
                    self.stopped_keys[ev.key] = {"reason": ev.reason, "since": ev.ts}
            else:
                self.feed.append(FeedItem(ev.ts, "INFO", f"resumed {scope} by {ev.actor}"))
                if ev.key is None:
                    self.stop_reason = self.stop_since = self.stop_actor = None
                else:
                    self.stopped_keys.pop(ev.key, None)
        elif isinstance(ev, BudgetDowngrade):
            self.downgrade = ev if ev.active else None
            verb = "routing auto calls one tier down" if ev.active else "downgrade lifted"
            self.feed.append(FeedItem(ev.ts, "P2", f"budget {ev.budget} at {ev.share:.0%}: {verb}"))
        self.version += 1

    def seed_history(self, hist: dict[str, Any]) -> None:
        items = [FeedItem(float(a["ts"]), str(a.get("severity") or "P2"),
                          f"{a.get('kind')}{' [' + a['key'] + ']' if a.get('key') else ''}: {a.get('message')}")
                 for a in hist.get("alerts", [])]
        for s in hist.get("stops", []):
            scope = "all traffic" if s.get("key") is None else f"'{s.get('key')}'"
            if s.get("stopped"):
                items.append(FeedItem(float(s["ts"]), "STOP", f"STOPPED {scope} by {s.get('actor')}: {s.get('reason') or ''}"))
            else:
                items.append(FeedItem(float(s["ts"]), "INFO", f"resumed {scope} by {s.get('actor')}"))
        have = {(i.ts, i.text) for i in self.feed}
        merged = sorted([i for i in items if (i.ts, i.text) not in have] + list(self.feed), key=lambda i: i.ts)
        self.feed.clear()
        self.feed.extend(merged[-(self.feed.maxlen or 200):])
        self.version += 1

    def seed_status(self, st: GatewayStatus) -> None:
        self.keys = dict(st.keys)
        self.sessions = dict(st.sessions)
        self.stop_reason = st.stop_reason if st.stopped else None
        self.stopped_keys = dict(st.stopped_keys)
        self.version += 1

    def rate_per_hour(self) -> float | None:
        """Dollars per hour over the recent window, from how fast the day's spend grew."""
        if len(self.points) < 2:
            return None
        (t0, _, d0), (t1, _, d1) = self.points[0], self.points[-1]
        if t1 - t0 < 5:
            return None
        grew = 0.0
        prev = d0
        for _, _, d in list(self.points)[1:]:
            grew += max(0.0, d - prev)
            prev = d
        return grew / (t1 - t0) * 3600.0


@dataclass(slots=True)
class TopState:
    """What the top bar shows; updated from ticks, stops and alerts."""

    stopped: bool = False
    stop_reason: str | None = None
    stop_actor: str | None = None
    stop_since: float | None = None
    rps: float = 0.0
    in_flight: int = 0
    hour_usd: float = 0.0
    day_usd: float = 0.0
    hourly_budget: float = 0.0
    daily_budget: float = 0.0
    savings_usd: float = 0.0
    alerts: deque[Alert] = field(default_factory=lambda: deque(maxlen=50))
    last_tick: float = 0.0
    drops_seen: int = 0
    drops_at: float = 0.0
    cluster: dict[str, Any] | None = None  # cluster mode: the tick's cluster section (processes, rps, in flight)

    def on_tick(self, t: StatsTick) -> None:
        self.rps, self.in_flight = t.rps, t.in_flight
        self.cluster = t.cluster
        self.hour_usd, self.day_usd = t.hour_usd, t.day_usd
        self.hourly_budget, self.daily_budget = t.hourly_budget_usd, t.daily_budget_usd
        self.savings_usd = t.savings_usd
        if t.stopped != self.stopped and not t.stopped:
            self.stop_reason = self.stop_actor = None
            self.stop_since = None
        self.stopped = t.stopped
        self.last_tick = t.ts

    def on_stop(self, ev: StopChanged) -> None:
        if ev.key is not None:
            return
        self.stopped = ev.stopped
        if ev.stopped:
            self.stop_reason, self.stop_actor, self.stop_since = ev.reason, ev.actor, ev.ts
        else:
            self.stop_reason = self.stop_actor = None
            self.stop_since = None

    def active_alerts(self, now: float | None = None, within_s: float = 600.0) -> list[Alert]:
        now = time.time() if now is None else now
        return [a for a in self.alerts if a.ts >= now - within_s and a.severity in ("P0", "P1")]

    def note_drops(self, total: int, now: float) -> None:
        if total > self.drops_seen:
            self.drops_seen = total
            self.drops_at = now
