"""Environment perturbations: another timezone or locale, and a slow network.

Why these: a test that reads the local clock or formats with the machine's locale passes on
the author's laptop and fails on a UTC CI runner (or the other way round), and a test that
assumes a fast network fails on a slow one. The runner changes one of these at a time.

Stdlib only: this runs inside the user's pytest, in a process that is never reused.
"""

from __future__ import annotations

import locale
import os
import socket
import time
from typing import Any

# Two zones far apart with different DST rules (and a half-hour offset), then a locale.
TZ_CANDIDATES = ("America/New_York", "Asia/Kolkata", "Europe/Berlin", "UTC")
LOCALE_CANDIDATES = ("C", "C.UTF-8")


def current_tz() -> str:
    tz = os.environ.get("TZ")
    if tz:
        return tz.lstrip(":")
    try:
        link = os.path.realpath("/etc/localtime")
        if "zoneinfo/" in link:
            return link.split("zoneinfo/", 1)[1]
    except OSError:
        pass
    return "UTC"


def current_locale() -> str:
    return os.environ.get("LC_ALL") or os.environ.get("LC_CTYPE") or os.environ.get("LANG") or "C"


def variants(n_tz: int = 2) -> list[str]:
    """Variants that differ from this machine: ``TZ=<zone>`` (two) and one ``LC_ALL=<locale>``."""
    here_tz, here_loc = current_tz(), current_locale()
    same_utc = {"UTC", "Etc/UTC", "Universal", "Zulu", "Etc/Universal"}
    tzs = [
        z for z in TZ_CANDIDATES if z != here_tz and not (z == "UTC" and here_tz in same_utc)
    ][:n_tz]
    norm = here_loc.replace("utf8", "UTF-8")
    locs = [loc for loc in LOCALE_CANDIDATES if loc != norm][:1]
    return [f"TZ={z}" for z in tzs] + [f"LC_ALL={loc}" for loc in locs]


def apply_env(variant: str) -> None:
    """Apply one ``TZ=...`` or ``LC_ALL=...`` variant to this process."""
    key, _, value = variant.partition("=")
    os.environ[key] = value
    if key == "TZ" and hasattr(time, "tzset"):
        time.tzset()
    elif key == "LC_ALL":
        try:
            locale.setlocale(locale.LC_ALL, value)
        except locale.Error:
            pass


def apply_slow_network(delay_s: float = 0.03) -> None:
    """Every connect, send and receive on an internet socket waits ``delay_s`` first (a slow link)."""
    cls = socket.socket
    sleep = time.sleep
    internet = (socket.AF_INET, socket.AF_INET6)

    def delayed(name: str) -> None:
        original = getattr(cls, name)

        def method(self: socket.socket, *args: Any, **kwargs: Any) -> Any:
            if self.family in internet:
                sleep(delay_s)
            return original(self, *args, **kwargs)

        method.__name__ = name
        setattr(cls, name, method)

    for name in ("connect", "connect_ex", "send", "sendall", "sendto", "recv", "recv_into", "recvfrom"):
        if hasattr(cls, name):
            delayed(name)
