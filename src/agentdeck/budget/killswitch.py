"""The emergency stop: one switch that refuses every new call (or one key's / session's) at once.

Why memory first, then the bus, then the disk: a stop must refuse the next call within
100 ms, so :meth:`KillSwitch.stop` flips the in-memory state before its first await. The
store write comes last and makes the stop survive a restart; :meth:`KillSwitch.load`
reads it back. Resuming is always explicit (a restart never lifts a stop).

Durable or not, said plainly: :meth:`KillSwitch.engage` and :meth:`KillSwitch.lift` answer
with an :class:`Ack` whose ``durable`` is True only once the row is committed to the
database. When the disk cannot be written the stop is still in force (memory first), the
store keeps retrying the row in the background, and the ack's ``note`` says that until
then a restart would lose it.

Scopes: ``None`` is global; any other name is a key or session name (one namespace, so
``agentdeck stop --key NAME`` works for both). A global resume lifts only the global stop;
key stops stay until resumed by name.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agentdeck.bus import Bus, StopChanged

if TYPE_CHECKING:
    from agentdeck.store import Store

ACTORS = ("console", "cli", "api", "auto")


@dataclass(slots=True, frozen=True)
class StopInfo:
    """Why calls are refused: the reason, the scope (None = everything), who and since when."""

    reason: str
    key: str | None
    actor: str
    since: float

    @property
    def message(self) -> str:
        """The text the gateway puts in its 403: names the reason and how to resume."""
        when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(self.since))
        if self.key is None:
            return (f"agentdeck emergency stop is active (by {self.actor} at {when}): {self.reason}. "
                    f"Resume with `agentdeck resume`, the console, or POST /admin/resume.")
        return (f"agentdeck emergency stop is active for '{self.key}' (by {self.actor} at {when}): {self.reason}. "
                f"Resume with `agentdeck resume --key {self.key}`, the console, or POST /admin/resume.")

    def to_dict(self) -> dict[str, Any]:
        return {"reason": self.reason, "key": self.key, "actor": self.actor, "since": self.since}


@dataclass(slots=True, frozen=True)
class Ack:
    """What a stop or resume command did: ``changed`` (False: nothing to resume), ``durable`` (on disk)."""

    changed: bool
    durable: bool
    info: StopInfo | None = None
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"durable": self.durable}
        if self.note:
            out["warning"] = self.note
        return out


def _memory_only_note(store: "Store | None", what: str) -> str:
    if store is None:
        return f"the {what} is in memory only: this gateway has no database, so a restart loses it"
    err = store.last_error or "unknown error"
    return (f"the {what} is in force but in memory only: the database cannot be written ({err}); it is retried "
            f"in the background, and a restart before it is written loses it")


class KillSwitch:
    """Global and per-key/session stops; ``check`` and ``watch`` are what the request path uses."""

    def __init__(self, bus: Bus, store: "Store | None" = None) -> None:
        self.bus = bus
        self.store = store
        self._global: StopInfo | None = None
        self._keys: dict[str, StopInfo] = {}
        # One shared Event per watched scope (key, session); popped and set when a stop covers it.
        self._watches: dict[tuple[str, str | None], asyncio.Event] = {}

    async def load(self) -> None:
        """Restore the stops recorded before a restart."""
        if self.store is None:
            return
        state = await self.store.stop_state()
        for key, row in state.items():
            info = StopInfo(reason=row.get("reason") or "", key=key, actor=row.get("actor") or "api", since=float(row["ts"]))
            if key is None:
                self._global = info
            else:
                self._keys[key] = info

    # -- request path (synchronous, O(1)) -------------------------------------------------
    def check(self, key: str, session: str | None = None) -> StopInfo | None:
        """Why a call by ``key`` (in ``session``) must be refused, or None."""
        if self._global is not None:
            return self._global
        if not self._keys:
            return None
        info = self._keys.get(key)
        if info is None and session is not None:
            info = self._keys.get(session)
        return info

    def watch(self, key: str, session: str | None = None) -> asyncio.Event:
        """An Event set when a stop covering ``key``/``session`` happens (shared by every stream of that scope)."""
        if self.check(key, session) is not None:
            ev = asyncio.Event()
            ev.set()
            return ev
        scope = (key, session)
        ev = self._watches.get(scope)
        if ev is None:
            ev = self._watches[scope] = asyncio.Event()
        return ev

    @property
    def stopped(self) -> bool:
        return self._global is not None

    # -- commands ------------------------------------------------------------------------
    async def stop(self, reason: str, key: str | None = None, actor: str = "api") -> StopInfo:
        """Engage the stop (globally, or for one key/session). Takes effect before the first await."""
        ack = await self.engage(reason, key=key, actor=actor)
        assert ack.info is not None
        return ack.info

    async def resume(self, key: str | None = None, actor: str = "api") -> bool:
        """Lift the stop for that scope. Returns False (and records nothing) if it was not stopped."""
        return (await self.lift(key=key, actor=actor)).changed

    async def engage(self, reason: str, key: str | None = None, actor: str = "api") -> Ack:
        """:meth:`stop`, answering whether the stop is durable (survives a restart) or in memory only."""
        reason = (reason or "").strip() or "no reason given"
        info = StopInfo(reason=reason, key=key, actor=actor, since=time.time())
        if key is None:
            self._global = info
        else:
            self._keys[key] = info
        self._fire(key)
        ev = StopChanged(stopped=True, reason=reason, key=key, actor=actor, ts=info.since)
        self.bus.publish(ev)
        durable = self.store is not None and await self.store.record_stop(ev)
        return Ack(changed=True, durable=durable, info=info, note=None if durable else _memory_only_note(self.store, "stop"))

    async def lift(self, key: str | None = None, actor: str = "api") -> Ack:
        """:meth:`resume`, answering whether the resume is durable. Nothing to lift: changed=False, durable=True."""
        if key is None:
            was, self._global = self._global, None
        else:
            was = self._keys.pop(key, None)
        if was is None:
            return Ack(changed=False, durable=True)
        ev = StopChanged(stopped=False, reason=None, key=key, actor=actor)
        self.bus.publish(ev)
        durable = self.store is not None and await self.store.record_stop(ev)
        return Ack(changed=True, durable=durable, note=None if durable else _memory_only_note(self.store, "resume"))

    # -- reading -------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        g = self._global
        return {
            "stopped": g is not None,
            "stop_reason": g.reason if g else None,
            "since": g.since if g else None,
            "actor": g.actor if g else None,
            "stopped_keys": {k: v.reason for k, v in self._keys.items()},
            "stops": {k: v.to_dict() for k, v in self._keys.items()},
        }

    async def history(self, limit: int = 50) -> list[dict[str, Any]]:
        """Every stop and resume, newest first: when, who (console, cli, api, auto), why."""
        if self.store is None:
            return []
        return await self.store.stop_history(limit)

    def _fire(self, key: str | None) -> None:
        if key is None:
            fired = list(self._watches.values())
            self._watches.clear()
        else:
            scopes = [s for s in self._watches if s[0] == key or s[1] == key]
            fired = [self._watches.pop(s) for s in scopes]
        for ev in fired:
            ev.set()
