"""Session keys for `agentdeck run`: each dev session gets a gateway key of its own.

Why a key per session: the console shows spend and calls per session, a session can carry
its own budget (`--budget`), and `agentdeck stop --key SESSION` stops one runaway agent
while everyone else keeps working. Secrets come from :func:`secrets.token_urlsafe`; only a
SHA-256 of each secret is kept, so a memory dump or a status page cannot leak one.
The gateway persists each session's name and digest (never the secret) so a restarted
gateway still accepts the keys of sessions that are running.

A session may also carry a request limit (`agentdeck run --max-requests N`, the "sample limit"
of cost protection: a test run of an agent that may make at most N calls). The count lives in
this registry's memory, one dict update per call (the request path does no I/O for it); after a
restart the gateway rebuilds it from the calls the store recorded for the session.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agentdeck.budget.ledger import Ledger

SECRET_PREFIX = "adk-s-"
_NAME_OK = re.compile(r"[^A-Za-z0-9_.:-]+")


@dataclass(slots=True, frozen=True)
class Session:
    """One `agentdeck run` session: its name (the key name in logs), budget and the key it belongs to."""

    name: str
    parent_key: str | None
    budget_usd: float | None
    created: float
    max_requests: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"session": self.name, "parent_key": self.parent_key, "budget_usd": self.budget_usd,
                "created": self.created, "max_requests": self.max_requests}


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def check_max_requests(max_requests: int | None) -> None:
    """A request limit is a positive whole number of calls (or None)."""
    if max_requests is not None and (isinstance(max_requests, bool) or not isinstance(max_requests, int)
                                     or max_requests < 1):
        raise ValueError(f"max_requests: must be a positive integer, got {max_requests!r}")


def clean_name(name: str) -> str:
    """A session name safe for logs, metrics labels and URLs (at most 64 characters)."""
    out = _NAME_OK.sub("-", name.strip()).strip("-")[:64]
    return out or "session"


class SessionRegistry:
    """Issues and looks up session secrets. ``lookup`` is a dict read: cheap on the request path."""

    def __init__(self, ledger: "Ledger | None" = None, reserved_names: set[str] | None = None) -> None:
        self.ledger = ledger
        self._by_digest: dict[str, Session] = {}
        self._by_name: dict[str, Session] = {}
        self._used: dict[str, int] = {}  # calls taken per session (only sessions with a request limit)
        self._reserved = set(reserved_names or ())  # configured key names a session may not take

    def create(self, name: str, budget_usd: float | None = None, parent_key: str | None = None,
               max_requests: int | None = None) -> tuple[str, str]:
        """Register a session; returns (name actually used, secret). A taken name gets a numeric suffix.

        ``max_requests``: the calls the session may make (None = no limit); see :meth:`take_request`.
        """
        check_max_requests(max_requests)
        base = clean_name(name)
        final, n = base, 1
        while final in self._by_name or final in self._reserved:
            n += 1
            final = f"{base}-{n}"
        secret = SECRET_PREFIX + secrets.token_urlsafe(24)
        s = Session(name=final, parent_key=parent_key, budget_usd=budget_usd, created=time.time(),
                    max_requests=max_requests)
        self._by_digest[_digest(secret)] = s
        self._by_name[final] = s
        if max_requests is not None:
            self._used[final] = 0
        if self.ledger is not None and budget_usd is not None:
            self.ledger.set_key_budget(final, budget_usd)
        return final, secret

    def digest_of(self, name: str) -> str | None:
        """The stored digest of a session's secret (what the gateway persists), or None."""
        s = self._by_name.get(name)
        return next((d for d, v in self._by_digest.items() if v is s), None) if s is not None else None

    def restore(self, name: str, digest: str, parent_key: str | None, budget_usd: float | None, created: float,
                max_requests: int | None = None, used: int = 0) -> Session:
        """Re-register a persisted session after a restart (its secret is unknown; its digest is enough).

        ``used``: the calls the session already made (the store's count), so a restart does not
        hand a limited session a fresh allowance.
        """
        check_max_requests(max_requests)
        s = Session(name=name, parent_key=parent_key, budget_usd=budget_usd, created=created, max_requests=max_requests)
        self._by_digest[digest] = s
        self._by_name[name] = s
        if max_requests is not None:
            self._used[name] = max(0, int(used))
        if self.ledger is not None and budget_usd is not None:
            self.ledger.set_key_budget(name, budget_usd)
        return s

    def take_request(self, name: str) -> bool:
        """Count one call of session ``name``; False once it has made its ``max_requests`` (then it is refused).

        Refused calls are not counted, so ``used`` never passes the limit. A session without a
        limit, or a name that is not a session, always gets True. Two dict operations, no I/O:
        it runs on the request path.
        """
        used = self._used.get(name)
        if used is None:
            return True
        s = self._by_name.get(name)
        if s is None or s.max_requests is None:
            return True
        if used >= s.max_requests:
            return False
        self._used[name] = used + 1
        return True

    def used(self, name: str) -> int:
        """Calls counted for a session with a request limit (0 for any other name)."""
        return self._used.get(name, 0)

    def lookup(self, secret: str) -> Session | None:
        """The session a presented key belongs to, or None (then it is not a session key)."""
        if not secret.startswith(SECRET_PREFIX):
            return None
        return self._by_digest.get(_digest(secret))

    def get(self, name: str) -> Session | None:
        return self._by_name.get(name)

    def end(self, name: str) -> bool:
        """Forget a session (its key stops working). Its spend stays in the ledger."""
        s = self._by_name.pop(name, None)
        if s is None:
            return False
        self._by_digest = {d: v for d, v in self._by_digest.items() if v is not s}
        self._used.pop(name, None)
        return True

    def all(self) -> list[Session]:
        return list(self._by_name.values())

    def __len__(self) -> int:
        return len(self._by_name)
