"""Anomaly detection: an agent stuck in a loop looks like a sudden jump in requests/s or $/hour.

Why a moving baseline and not fixed limits: "30 requests/s" is normal for a batch pipeline
and a disaster for one Claude Code session. Each scope (the whole gateway, and each key)
keeps an exponentially weighted baseline of its own requests/s and cost/hour with a time
constant of ``baseline_window_s``, and is compared with what it is doing now:

- requests/s over the last :data:`RPS_WINDOW_S` seconds above ``rps_factor`` x baseline
  -> ``Alert(P0, "rps-anomaly")`` (the seed's 10x rule);
- cost over the last :data:`COST_WINDOW_S` seconds, as $/hour, above ``cost_factor`` x
  the expected rate -> ``Alert(P1, "cost-anomaly")`` (the seed's 2x rule).

The baseline only learns from seconds that have left both "now" windows, so a burst is
always compared with what came before it, never with itself.

A quiet start must not alert on its first burst: the baseline has a floor
(``min_baseline_rps``, ``min_baseline_usd_per_hour``) and a scope only alerts after
:func:`warmup_s` of history. While a scope is anomalous its baseline is frozen (a loop
must not teach the detector that looping is normal) for at most one baseline window;
after that the new level becomes the baseline. Each episode alerts once.

Everything is kept in per-second ring buffers with running sums, so :meth:`observe`
costs O(1) amortised (advancing over idle seconds is bounded by the ring size).
"""

from __future__ import annotations

import math
import time
from typing import Callable

from agentdeck.budget.ledger import usd
from agentdeck.bus import Alert, Bus
from agentdeck.config import AnomalyConfig

RPS_WINDOW_S = 10
COST_WINDOW_S = 60
_RING = COST_WINDOW_S
GLOBAL = "*"


def warmup_s(cfg: AnomalyConfig) -> float:
    """History a scope needs before it may alert: a fifth of the baseline window, at least a minute."""
    return max(float(COST_WINDOW_S), cfg.baseline_window_s / 5)


class _Scope:
    """Rates of one scope (the gateway or one key)."""

    __slots__ = ("name", "first", "cur", "counts", "costs", "sum_rps_window", "sum_cost_window",
                 "ewma_rps", "ewma_cost", "weight", "rps_alarm", "cost_alarm", "alarm_since")

    def __init__(self, name: str, now_s: int) -> None:
        self.name = name
        self.first = now_s
        self.cur = now_s
        self.counts = [0] * _RING
        self.costs = [0.0] * _RING
        self.sum_rps_window = 0  # requests in the last RPS_WINDOW_S seconds (current one included)
        self.sum_cost_window = 0.0  # dollars in the last COST_WINDOW_S seconds
        self.ewma_rps = 0.0  # un-normalised EWMA; divide by weight (bias correction for a short history)
        self.ewma_cost = 0.0
        self.weight = 0.0
        self.rps_alarm = False
        self.cost_alarm = False
        self.alarm_since = 0.0

    def baseline(self) -> tuple[float, float]:
        """(requests/s, $/s) baseline; zero before any full second has been folded in."""
        if self.weight <= 0:
            return 0.0, 0.0
        return self.ewma_rps / self.weight, self.ewma_cost / self.weight


class AnomalyDetector:
    """Watches finished requests; publishes alerts; tells the gateway which keys to throttle."""

    def __init__(self, cfg: AnomalyConfig, bus: Bus, *, clock: Callable[[], float] = time.time) -> None:
        self.cfg = cfg
        self.bus = bus
        self.clock = clock
        self._alpha = 1.0 - math.exp(-1.0 / cfg.baseline_window_s)
        self._keep = 1.0 - self._alpha
        self._scopes: dict[str, _Scope] = {}
        self.alerts_raised = 0

    # -- request path ------------------------------------------------------------------------
    def observe(self, key: str, cost_usd: float) -> None:
        """Count one finished request of ``key`` costing ``cost_usd``. Synchronous and cheap."""
        if not self.cfg.enabled:
            return
        now = self.clock()
        for name in (GLOBAL, key):
            sc = self._scope(name, now)
            i = sc.cur % _RING
            sc.counts[i] += 1
            sc.costs[i] += cost_usd
            sc.sum_rps_window += 1
            sc.sum_cost_window += cost_usd
            self._evaluate(sc, now)

    def throttled(self, key: str) -> bool:
        """True while ``key`` runs anomalously hot and ``throttle_key`` is on (then cap it at ``throttle_rps``)."""
        if not (self.cfg.enabled and self.cfg.throttle_key):
            return False
        sc = self._scopes.get(key)
        if sc is None or not sc.rps_alarm:
            return False
        now = self.clock()
        self._advance(sc, int(now))
        self._evaluate(sc, now)
        return sc.rps_alarm

    # -- reading -------------------------------------------------------------------------
    def rates(self, key: str = GLOBAL) -> dict[str, float | bool]:
        """What the detector sees for a scope now (for status pages and tests)."""
        now = self.clock()
        sc = self._scopes.get(key)
        if sc is None:
            return {"rps": 0.0, "baseline_rps": 0.0, "usd_per_hour": 0.0, "baseline_usd_per_hour": 0.0,
                    "rps_anomaly": False, "cost_anomaly": False}
        self._advance(sc, int(now))
        base_rps, base_cost = sc.baseline()
        return {
            "rps": sc.sum_rps_window / RPS_WINDOW_S,
            "baseline_rps": base_rps,
            "usd_per_hour": sc.sum_cost_window * 3600.0 / COST_WINDOW_S,
            "baseline_usd_per_hour": base_cost * 3600.0,
            "rps_anomaly": sc.rps_alarm,
            "cost_anomaly": sc.cost_alarm,
        }

    def anomalous_keys(self) -> list[str]:
        return [n for n, s in self._scopes.items() if n != GLOBAL and (s.rps_alarm or s.cost_alarm)]

    # -- internals -----------------------------------------------------------------------
    def _scope(self, name: str, now: float) -> _Scope:
        s = int(now)
        sc = self._scopes.get(name)
        if sc is None:
            sc = self._scopes[name] = _Scope(name, s)
        else:
            self._advance(sc, s)
        return sc

    def _advance(self, sc: _Scope, s: int) -> None:
        """Move the scope's clock to second ``s``: fold finished seconds into the baseline, expire old ones."""
        if s <= sc.cur:
            return
        frozen = (sc.rps_alarm or sc.cost_alarm) and (self.clock() - sc.alarm_since) < self.cfg.baseline_window_s
        steps = s - sc.cur
        for t in range(sc.cur + 1, sc.cur + 1 + min(steps, _RING)):
            i = t % _RING  # holds second t - _RING, which now leaves every window...
            if not frozen and t - _RING >= sc.first:  # ...and only then joins the baseline
                sc.ewma_rps = sc.ewma_rps * self._keep + self._alpha * sc.counts[i]
                sc.ewma_cost = sc.ewma_cost * self._keep + self._alpha * sc.costs[i]
                sc.weight = sc.weight * self._keep + self._alpha
            sc.sum_rps_window -= sc.counts[(t - RPS_WINDOW_S) % _RING]
            sc.sum_cost_window -= sc.costs[i]
            sc.counts[i] = 0
            sc.costs[i] = 0.0
        idle = steps - min(steps, _RING)
        if idle > 0 and not frozen:  # long silence: fold the empty seconds in closed form
            decay = self._keep ** idle
            sc.ewma_rps *= decay
            sc.ewma_cost *= decay
            sc.weight = sc.weight * decay + (1.0 - decay)
        if steps >= _RING:
            sc.sum_rps_window = 0
            sc.sum_cost_window = 0.0
        if sc.sum_cost_window < 1e-12:  # float residue of subtracting what was added
            sc.sum_cost_window = 0.0
        sc.cur = s

    def _evaluate(self, sc: _Scope, now: float) -> None:
        if now - sc.first < warmup_s(self.cfg):
            return
        base_rps, base_cost = sc.baseline()
        expected_rps = max(base_rps, self.cfg.min_baseline_rps)
        expected_cost_h = max(base_cost * 3600.0, self.cfg.min_baseline_usd_per_hour)
        rps = sc.sum_rps_window / RPS_WINDOW_S
        cost_h = sc.sum_cost_window * 3600.0 / COST_WINDOW_S
        who = "the gateway" if sc.name == GLOBAL else f"key '{sc.name}'"
        alert_key = None if sc.name == GLOBAL else sc.name

        if rps > self.cfg.rps_factor * expected_rps:
            if not sc.rps_alarm:
                sc.rps_alarm = True
                sc.alarm_since = now if not sc.cost_alarm else sc.alarm_since
                action = "; throttled to %.1f req/s" % self.cfg.throttle_rps if (self.cfg.throttle_key and alert_key) else ""
                self._publish("P0", "rps-anomaly", alert_key,
                              f"{who}: {rps:.1f} req/s over the last {RPS_WINDOW_S}s, {rps / expected_rps:.0f}x its "
                              f"baseline of {expected_rps:.2f} req/s{action}")
        elif sc.rps_alarm and rps <= self.cfg.rps_factor * expected_rps / 2:
            sc.rps_alarm = False

        if cost_h > self.cfg.cost_factor * expected_cost_h:
            if not sc.cost_alarm:
                sc.cost_alarm = True
                sc.alarm_since = now if not sc.rps_alarm else sc.alarm_since
                self._publish("P1", "cost-anomaly", alert_key,
                              f"{who}: spending {usd(cost_h)}/hour over the last {COST_WINDOW_S}s, "
                              f"{cost_h / expected_cost_h:.1f}x the expected {usd(expected_cost_h)}/hour")
        elif sc.cost_alarm and cost_h <= self.cfg.cost_factor * expected_cost_h / 2:
            sc.cost_alarm = False

    def _publish(self, severity: str, kind: str, key: str | None, message: str) -> None:
        self.alerts_raised += 1
        self.bus.publish(Alert(severity=severity, kind=kind, message=message, key=key))
