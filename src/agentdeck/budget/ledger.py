"""The spend ledger: reserve the worst case before a call, settle to the real cost after.

Why reservations: a budget checked after the call overshoots under concurrency (300
callers all see $0.01 left and all go). Here every call reserves its worst-case cost
first, in one synchronous check-and-add; the gateway runs on one asyncio loop, so no other
caller can slip in between the check and the add. The reservation is then settled to the
real cost or released, and both are idempotent so every exit path may call them.

Windows are ROLLING, not calendar: the hourly budget covers the last 60 minutes and the
daily budget the last 24 hours (per key too). A calendar hour lets an agent spend the
whole hourly budget at 12:59 and again at 13:00; a rolling window does not. Spend is kept
in buckets (1 minute for the hour, 10 minutes for the day), so a window is "the current
bucket plus the previous N-1 ones": the edge is accurate to one bucket. ``resets_at`` is
the moment enough old buckets age out for the refused call to fit.

A budget of 0 means "no limit" (use the emergency stop to refuse everything).

The requests table is the ledger on disk: after a restart :meth:`Ledger.load` rebuilds the
windows (global, per key and per session) from each request row's ``cost_usd``.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Awaitable, Callable

from agentdeck.bus import Alert, Bus
from agentdeck.config import Config

if TYPE_CHECKING:
    from agentdeck.store import Store

HOUR_S = 3600.0
DAY_S = 86400.0
_EPS = 1e-12
# A refused call declares its budget "reached" only once settled spend is at least this share.
REACHED_SHARE = 0.9


class BudgetExceeded(Exception):
    """A reservation would take spend past a budget. The gateway answers 403 ``budget_exceeded``."""

    def __init__(self, budget: str, limit_usd: float, spent_usd: float, reserved_usd: float,
                 requested_usd: float, resets_at: float, now: float) -> None:
        self.budget = budget
        self.limit_usd = limit_usd
        self.spent_usd = spent_usd
        self.reserved_usd = reserved_usd
        self.requested_usd = requested_usd
        self.resets_at = resets_at
        self.message = _refusal_message(budget, limit_usd, spent_usd, reserved_usd, requested_usd, resets_at, now)
        super().__init__(self.message)


def usd(v: float) -> str:
    """Dollars for people: cents when that says enough, more digits for sub-cent amounts ($0.0018)."""
    if v == 0 or abs(v) >= 0.01:
        return f"${v:,.2f}"
    text = f"{v:.6f}".rstrip("0")
    return "$" + (text if len(text.split(".")[1]) >= 2 else f"{v:.2f}")


def _fmt_wait(seconds: float) -> str:
    s = max(0, int(math.ceil(seconds)))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    if h:
        return f"{h}h{m:02d}m"
    if m:
        return f"{m}m{sec:02d}s"
    return f"{sec}s"


def _budget_label(budget: str) -> str:
    if budget.startswith("key:"):
        return f"key '{budget[4:]}' daily budget"
    if budget.startswith("session:"):
        return f"session '{budget[8:]}' budget"
    return f"{budget} budget"


def _refusal_message(budget: str, limit: float, spent: float, reserved: float, requested: float,
                     resets_at: float, now: float) -> str:
    when = time.strftime("%H:%M UTC", time.gmtime(resets_at))
    window = "last 60 min" if budget == "hourly" else "last 24 h"
    return (
        f"{_budget_label(budget)} {usd(limit)} reached ({usd(spent)} spent in the {window}, "
        f"{usd(reserved)} reserved by calls in flight, this call needs up to {usd(requested)}); "
        f"room frees up at {when} (in {_fmt_wait(resets_at - now)})"
    )


class _Window:
    """A rolling sum over ``span_s`` kept in fixed buckets: add and read are O(1) amortised.

    Advancing past old buckets zeroes them and recomputes the total from the (few) live
    buckets, so floating-point drift cannot accumulate over days of traffic.
    """

    __slots__ = ("span_s", "bucket_s", "n", "_sums", "_ids", "_cur", "total")

    def __init__(self, span_s: float, bucket_s: float) -> None:
        self.span_s = span_s
        self.bucket_s = bucket_s
        self.n = int(round(span_s / bucket_s))
        self._sums = [0.0] * self.n
        self._ids = [-1] * self.n  # absolute bucket number held by each slot
        self._cur = -1
        self.total = 0.0

    def _advance(self, now: float) -> None:
        b = int(now // self.bucket_s)
        if b <= self._cur:
            return
        self._cur = b
        live = 0.0
        low = b - self.n
        for i in range(self.n):
            if self._ids[i] <= low:
                self._sums[i] = 0.0
                self._ids[i] = -1
            else:
                live += self._sums[i]
        self.total = live

    def add(self, ts: float, amount: float, now: float) -> None:
        self._advance(now)
        b = int(ts // self.bucket_s)
        if b <= self._cur - self.n or b > self._cur:
            if b > self._cur:  # a timestamp slightly in the future (clock skew): count it now
                b = self._cur
            else:
                return  # already outside the window
        i = b % self.n
        if self._ids[i] != b:
            self._sums[i] = 0.0
            self._ids[i] = b
        self._sums[i] += amount
        self.total += amount

    def value(self, now: float) -> float:
        self._advance(now)
        return max(0.0, self.total)

    def frees_enough_at(self, need: float, now: float) -> float:
        """When at least ``need`` dollars will have aged out (or everything has). Not on the hot path."""
        self._advance(now)
        freed = 0.0
        last = now
        for b, amount in sorted((bid, s) for bid, s in zip(self._ids, self._sums) if bid >= 0 and s > 0):
            last = (b + self.n) * self.bucket_s
            freed += amount
            if freed + _EPS >= need:
                return last
        return last

    def clear(self) -> None:
        self._sums = [0.0] * self.n
        self._ids = [-1] * self.n
        self.total = 0.0


def _hour_window() -> _Window:
    return _Window(HOUR_S, 60.0)


def _day_window() -> _Window:
    return _Window(DAY_S, 600.0)


_ids = itertools.count(1)


@dataclass(slots=True, eq=False)
class Reservation:
    """Money set aside for one call in flight. ``open`` turns False once settled or released."""

    key: str
    amount_usd: float
    session: str | None = None
    id: int = field(default_factory=lambda: next(_ids))
    created: float = 0.0
    open: bool = True
    actual_usd: float | None = None


@dataclass(slots=True)
class _Budget:
    """Threshold bookkeeping for one budget (global hourly/daily, or a key's / session's)."""

    name: str
    fired: set[float] = field(default_factory=set)
    # Fast path: while rearm_below <= spent < next_at for the same limit, nothing can change.
    limit: float = -1.0
    next_at: float = 0.0
    rearm_below: float = -1.0


DailyExhaustedHook = Callable[[str], "Awaitable[Any] | Any"]


class Ledger:
    """Global hourly and daily budgets, per-key daily budgets, session budgets; reservations."""

    def __init__(self, cfg: Config, bus: Bus, *, clock: Callable[[], float] = time.time,
                 on_daily_exhausted: DailyExhaustedHook | None = None) -> None:
        self.cfg = cfg
        self.bus = bus
        self.clock = clock
        self.on_daily_exhausted = on_daily_exhausted
        self._hour = _hour_window()
        self._day = _day_window()
        self._key_day: dict[str, _Window] = {}
        self._key_reserved: dict[str, float] = {}
        self._reserved = 0.0
        self._open: dict[int, Reservation] = {}
        self._key_budgets: dict[str, float] = {k.name: k.daily_budget_usd for k in cfg.keys if k.daily_budget_usd is not None}
        # 1.0 is always watched: reaching a budget is a P0 and may trigger the automatic stop.
        self._thresholds = sorted({t for t in cfg.budget.alert_thresholds if 0 < t <= 1.0} | {1.0})
        self._budgets: dict[str, _Budget] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self.refused = 0

    # -- configuration -----------------------------------------------------------------
    @property
    def hourly_usd(self) -> float:
        return self.cfg.budget.hourly_usd

    @property
    def daily_usd(self) -> float:
        return self.cfg.budget.daily_usd

    def set_key_budget(self, key: str, usd: float | None) -> None:
        """Give a key or session (``agentdeck run --budget``) its own rolling 24 h budget; None removes it."""
        if usd is None:
            self._key_budgets.pop(key, None)
        else:
            self._key_budgets[key] = float(usd)

    def key_budget(self, key: str) -> float | None:
        return self._key_budgets.get(key)

    # -- restart -------------------------------------------------------------------------
    async def load(self, store: "Store") -> int:
        """Rebuild the windows from the requests table. Call once at start-up, before serving."""
        now = self.clock()
        rows = await store.spend_rows_since(now - DAY_S)
        self._hour.clear()
        self._day.clear()
        self._key_day.clear()
        for r in rows:
            # The session too: a session's budget must not start afresh after a restart.
            session = r.get("session")
            self._add_spend(float(r["ts"]), str(r["key"]), str(session) if session else None, float(r["cost_usd"]), now)
        # Thresholds already crossed before the restart must not alert again.
        seeds = [("hourly", self.hourly_usd, self._hour), ("daily", self.daily_usd, self._day)]
        seeds += [(f"key:{k}", self._key_budgets.get(k) or 0.0, w) for k, w in self._key_day.items()]
        for name, limit, window in seeds:
            if limit > 0:
                st = self._state(name)
                spent = window.value(now)
                st.fired.update(t for t in self._thresholds if spent + _EPS >= t * limit)
                self._bounds(st, limit)
        return len(rows)

    # -- the request path (synchronous, O(1) amortised) --------------------------------------
    def reserve(self, key: str, amount_usd: float, session: str | None = None) -> Reservation:
        """Set ``amount_usd`` aside for a call by ``key`` (and ``session``), or raise BudgetExceeded.

        Checks every budget the call falls under: global hourly, global daily, the key's
        daily budget and the session's budget. The check and the add happen without an
        await in between, which is what makes concurrent callers unable to overshoot.
        """
        now = self.clock()
        amount = amount_usd if amount_usd > 0 else 0.0
        budget = self.cfg.budget
        reserved = self._reserved
        limit = budget.hourly_usd
        if limit > 0:
            spent = self._hour.value(now)
            if spent + reserved + amount > limit + _EPS:
                self._refuse("hourly", limit, spent, reserved, amount, now)
        limit = budget.daily_usd
        if limit > 0:
            spent = self._day.value(now)
            if spent + reserved + amount > limit + _EPS:
                self._refuse("daily", limit, spent, reserved, amount, now)
        if self._key_budgets:
            for scope, label in ((key, "key"), (session, "session")):
                if scope is None or (label == "session" and scope == key):
                    continue
                limit = self._key_budgets.get(scope, 0.0)
                if limit > 0:
                    w = self._key_day.get(scope)
                    spent = w.value(now) if w is not None else 0.0
                    held = self._key_reserved.get(scope, 0.0)
                    if spent + held + amount > limit + _EPS:
                        self._refuse(f"{label}:{scope}", limit, spent, held, amount, now)
        r = Reservation(key=key, amount_usd=amount, session=session, created=now)
        self._open[r.id] = r
        self._reserved += amount
        self._key_reserved[key] = self._key_reserved.get(key, 0.0) + amount
        if session is not None and session != key:
            self._key_reserved[session] = self._key_reserved.get(session, 0.0) + amount
        return r

    def _refuse(self, name: str, limit: float, spent: float, reserved: float, amount: float, now: float) -> None:
        """Raise BudgetExceeded for ``name`` (not the hot path: only refused calls get here)."""
        self.refused += 1
        window = self._window_for(name)
        need = spent + reserved + amount - limit
        resets_at = window.frees_enough_at(need, now) if window is not None else now
        exc = BudgetExceeded(name, limit, spent, reserved, amount, resets_at, now)
        if spent + amount > limit + _EPS and spent >= limit * REACHED_SHARE:
            # Even with nothing else in flight this call would not fit, and little is left:
            # the budget is gone. (One huge call on a fresh budget is refused without declaring
            # the budget gone; calls in flight never count here.)
            self._reached(name, limit, spent, f"a call needing up to {usd(amount)} was refused")
        raise exc

    def settle(self, r: Reservation, actual_usd: float) -> None:
        """Replace the reservation by the real cost. A second settle or release is a no-op."""
        if not self._close(r):
            return
        now = self.clock()
        actual = max(0.0, float(actual_usd))
        r.actual_usd = actual
        if actual > 0:
            self._add_spend(now, r.key, r.session, actual, now)
            self._check_thresholds(r.key, r.session, now)

    def release(self, r: Reservation) -> None:
        """Give the reservation back unspent (the call never reached the provider)."""
        if self._close(r):
            r.actual_usd = 0.0

    def charge(self, key: str, cost_usd: float, session: str | None = None) -> None:
        """Count spend that had no reservation (for example a call priced after the fact)."""
        now = self.clock()
        if cost_usd > 0:
            self._add_spend(now, key, session, float(cost_usd), now)
            self._check_thresholds(key, session, now)

    # -- reading -------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        now = self.clock()
        keys: dict[str, dict[str, Any]] = {}
        for k in set(self._key_day) | set(self._key_budgets):
            w = self._key_day.get(k)
            keys[k] = {
                "day_usd": round(w.value(now), 6) if w is not None else 0.0,
                "budget_usd": self._key_budgets.get(k),
                "reserved_usd": round(self._key_reserved.get(k, 0.0), 6),
            }
        return {
            "hour_usd": round(self._hour.value(now), 6),
            "day_usd": round(self._day.value(now), 6),
            "reserved_usd": round(max(0.0, self._reserved), 6),
            "hourly_usd": self.hourly_usd,
            "daily_usd": self.daily_usd,
            "open_reservations": len(self._open),
            "refused": self.refused,
            "windows": "rolling",
            "keys": keys,
        }

    def share_used(self) -> float:
        """max over the global budgets of (spent + reserved) / limit: what budget-aware routing reads."""
        now = self.clock()
        share = 0.0
        if self.hourly_usd > 0:
            share = max(share, (self._hour.value(now) + self._reserved) / self.hourly_usd)
        if self.daily_usd > 0:
            share = max(share, (self._day.value(now) + self._reserved) / self.daily_usd)
        return share

    def spent(self, budget: str = "daily") -> float:
        now = self.clock()
        if budget == "hourly":
            return self._hour.value(now)
        if budget == "daily":
            return self._day.value(now)
        w = self._key_day.get(_scope(budget))
        return w.value(now) if w is not None else 0.0

    @property
    def reserved_usd(self) -> float:
        return max(0.0, self._reserved)

    @property
    def open_reservations(self) -> int:
        return len(self._open)

    # -- internals -----------------------------------------------------------------------
    def _close(self, r: Reservation) -> bool:
        if not r.open or self._open.pop(r.id, None) is None:
            r.open = False
            return False
        r.open = False
        self._reserved -= r.amount_usd
        if not self._open:
            self._reserved = 0.0  # nothing in flight: wipe float residue
        for scope in (r.key, r.session) if r.session is not None and r.session != r.key else (r.key,):
            left = self._key_reserved.get(scope, 0.0) - r.amount_usd
            if left <= _EPS:
                self._key_reserved.pop(scope, None)
            else:
                self._key_reserved[scope] = left
        return True

    def _add_spend(self, ts: float, key: str, session: str | None, amount: float, now: float) -> None:
        self._hour.add(ts, amount, now)
        self._day.add(ts, amount, now)
        for scope in (key, session) if session is not None and session != key else (key,):
            w = self._key_day.get(scope)
            if w is None:
                w = self._key_day[scope] = _day_window()
            w.add(ts, amount, now)

    def _window_for(self, name: str) -> _Window | None:
        if name == "hourly":
            return self._hour
        if name == "daily":
            return self._day
        return self._key_day.get(_scope(name))

    def _state(self, name: str) -> _Budget:
        st = self._budgets.get(name)
        if st is None:
            st = self._budgets[name] = _Budget(name)
        return st

    def _check_thresholds(self, key: str, session: str | None, now: float) -> None:
        budget = self.cfg.budget
        self._check_one("hourly", budget.hourly_usd, self._hour, now)
        self._check_one("daily", budget.daily_usd, self._day, now)
        if self._key_budgets:
            for scope, label in ((key, "key"), (session, "session")):
                if scope is None or (label == "session" and scope == key):
                    continue
                limit = self._key_budgets.get(scope)
                w = self._key_day.get(scope)
                if limit and w is not None:
                    self._check_one(f"{label}:{scope}", limit, w, now)

    def _check_one(self, name: str, limit: float, window: _Window, now: float) -> None:
        if limit <= 0:
            return
        spent = window.value(now)
        st = self._budgets.get(name)
        if st is None:
            st = self._budgets[name] = _Budget(name)
        elif st.limit == limit and st.rearm_below <= spent < st.next_at:
            return
        share = spent / limit
        # Re-arm thresholds the rolling window has fallen well below (10% hysteresis).
        if st.fired:
            st.fired = {t for t in st.fired if share >= t * 0.9}
        crossed = [t for t in self._thresholds if share + _EPS >= t and t not in st.fired]
        if crossed:
            top = max(crossed)
            if top >= 1.0:
                self._reached(name, limit, spent)
            else:
                st.fired.update(t for t in self._thresholds if t <= top)
                self._alert(name, top, limit, spent)
        self._bounds(st, limit)

    def _bounds(self, st: _Budget, limit: float) -> None:
        """Recompute the spend range in which no threshold can fire or re-arm."""
        unfired = [t for t in self._thresholds if t not in st.fired]
        st.limit = limit
        st.next_at = min(unfired) * limit - _EPS if unfired else math.inf
        st.rearm_below = max(st.fired) * 0.9 * limit if st.fired else -1.0

    def _alert(self, name: str, threshold: float, limit: float, spent: float, detail: str | None = None,
               reached: bool = False) -> None:
        pct = int(round(threshold * 100))
        severity = "P0" if threshold >= 1.0 else "P1" if threshold >= 0.8 else "P2"
        scope = _scope(name) if ":" in name else None
        kind_budget = name.split(":", 1)[0]
        if reached:
            text = f"{_budget_label(name)} reached ({usd(spent)} spent of {usd(limit)})"
        else:
            text = f"{_budget_label(name)}: {pct}% used ({usd(spent)} of {usd(limit)})"
        if detail:
            text += f"; {detail}"
        self.bus.publish(Alert(severity=severity, kind=f"budget-{kind_budget}-{pct}", message=text, key=scope))

    def _reached(self, name: str, limit: float, spent: float, why: str = "") -> None:
        """The budget cannot admit calls any more: a P0 once per window, and the auto stop for the daily one."""
        st = self._state(name)
        if 1.0 in st.fired:
            return
        st.fired.update(t for t in self._thresholds if t <= 1.0)
        self._bounds(st, limit)
        detail = "new calls are refused until spend ages out of the window"
        self._alert(name, 1.0, limit, spent, f"{why}; {detail}" if why else detail, reached=True)
        if name == "daily" and self.cfg.budget.auto_stop_when_daily_spent and self.on_daily_exhausted is not None:
            reason = f"daily budget {usd(limit)} reached ({usd(spent)} spent in the last 24 h)"
            try:
                res = self.on_daily_exhausted(reason)
            except Exception:  # a broken hook must not break the request path
                return
            if inspect.isawaitable(res):
                task = asyncio.ensure_future(res)
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)


def _scope(name: str) -> str:
    return name.split(":", 1)[1] if ":" in name else name
