"""`agentdeck statusline`: one short line for Claude Code's ``statusLine`` command.

Claude Code runs the command after each turn with a JSON document on stdin (session id, model,
workspace, its own cost count) and shows the first line printed. Ours says whether the gateway
lets traffic through (LIVE / STOPPED), the day's spend against the daily budget, and, inside
``agentdeck run``, the session's own spend:

    agentdeck LIVE  $3.20/$50.00 today (6%)  session $0.42

Why it avoids the rest of agentdeck: it runs after every turn, so it has to be quick. It imports
no config loader, no HTTP library, nothing of the gateway: it finds the gateway through
``$AGENTDECK_URL`` (set by ``agentdeck run``) or the registry of live gateways, reads
``/admin/status`` with one raw HTTP/1.0 request (short timeout), and always exits 0 with a
line, since an error here would only clutter the editor.

In ``~/.claude/settings.json``:  ``{"statusLine": {"type": "command", "command": "agentdeck statusline"}}``
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any
from urllib.parse import urlsplit

TIMEOUT_S = 0.4
_GREEN, _RED, _DIM, _RESET = "\x1b[32m", "\x1b[1;31m", "\x1b[2m", "\x1b[0m"
SETTINGS = {"statusLine": {"type": "command", "command": "agentdeck statusline", "padding": 0}}


def register(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("statusline", parents=parents,
                       help="one line (LIVE/STOPPED, spend vs budget, the session's spend) for Claude Code's statusLine",
                       description="Reads Claude Code's statusLine JSON on stdin (optional) and prints one line. "
                                   'Install: {"statusLine": {"type": "command", "command": "agentdeck statusline"}} '
                                   "in ~/.claude/settings.json.")
    p.add_argument("--url", metavar="U", help="gateway URL (default: $AGENTDECK_URL, else the live local gateway)")
    p.add_argument("--no-color", action="store_true", help="plain text (also with NO_COLOR set)")
    p.set_defaults(func=run)


def claude_settings_json() -> str:
    """The settings Claude Code takes with ``--settings`` so a session shows the line (used by ``agentdeck run``)."""
    return json.dumps(SETTINGS, separators=(",", ":"))


def _http_get_json(url: str, path: str, token: str, timeout: float = TIMEOUT_S) -> dict[str, Any]:
    """GET url+path over a plain socket (http.client alone costs ~13 ms to import)."""
    import socket

    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    if parts.scheme != "http":
        raise OSError(f"only http:// gateways are supported here, not {parts.scheme}://")
    req = (f"GET {path} HTTP/1.0\r\nHost: {host}:{port}\r\nAuthorization: Bearer {token}\r\n"
           "Accept: application/json\r\nConnection: close\r\n\r\n").encode("latin-1")
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(req)
        chunks = []
        while True:
            b = s.recv(65536)
            if not b:
                break
            chunks.append(b)
    raw = b"".join(chunks)
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0].split()
    code = int(status_line[1]) if len(status_line) > 1 else 0
    if code != 200:
        raise OSError(f"HTTP {code}")
    doc = json.loads(body)
    if not isinstance(doc, dict):
        raise ValueError("not a status document")
    return doc


def _target(url: str | None) -> tuple[str, str] | None:
    """(url, admin token) of the gateway to ask, or None when no live gateway is known."""
    from agentdeck import runtime

    url = url or os.environ.get("AGENTDECK_URL")
    token = os.environ.get("AGENTDECK_ADMIN_TOKEN", "")
    if url:
        url = url.rstrip("/")
        if not token:
            entry = runtime.find(url)
            token = entry.admin_token() if entry is not None else _default_runtime_token(url)
        return url, token
    entries = runtime.live()
    if entries:
        return entries[0].url, token or entries[0].admin_token()
    return None


def _default_runtime_token(url: str) -> str:
    """The token in the default data dir's gateway.json when it is for ``url``."""
    from agentdeck.paths import default_data_dir

    try:
        data = json.loads(open(os.path.join(default_data_dir(), "gateway.json")).read())
    except (OSError, ValueError):
        return ""
    return str(data.get("admin_token", "")) if isinstance(data, dict) and data.get("url") == url else ""


def _money(v: float) -> str:
    return f"${v:.2f}" if v >= 0.995 or v == 0 else f"${v:.3f}"


def line(st: dict[str, Any], session: str | None, color: bool) -> str:
    """The status line for a status document."""
    def c(code: str, text: str) -> str:
        return f"{code}{text}{_RESET}" if color else text

    stopped = bool(st.get("stopped"))
    parts = ["agentdeck " + (c(_RED, "STOPPED") if stopped else c(_GREEN, "LIVE"))]
    keys = st.get("keys") or {}
    if not stopped and session and session in (st.get("stopped_keys") or {}):
        parts[0] = "agentdeck " + c(_RED, "STOPPED") + " (this session)"
    spend, budget = st.get("spend") or {}, st.get("budget") or {}
    try:
        day, daily = float(spend.get("day_usd") or 0.0), float(budget.get("daily_usd") or 0.0)
        parts.append(f"{_money(day)}/{_money(daily)} today ({day / daily:.0%})" if daily > 0 else f"{_money(day)} today")
    except (TypeError, ValueError):
        pass
    if session:
        mine = keys.get(session) or {}
        try:
            s_spend = float(mine.get("day_usd") or 0.0)
            cap = mine.get("budget_usd")
            parts.append(f"session {_money(s_spend)}" + (f"/{_money(float(cap))}" if cap is not None else ""))
        except (TypeError, ValueError):
            pass
    if stopped and st.get("stop_reason"):
        parts.append(c(_DIM, str(st["stop_reason"])[:60]))
    return "  ".join(parts)


def _read_stdin() -> dict[str, Any]:
    """Claude Code's statusLine document, if one was piped in (never wait on a terminal)."""
    try:
        if sys.stdin is None or sys.stdin.isatty():
            return {}
        raw = sys.stdin.read()
        doc = json.loads(raw) if raw.strip() else {}
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def run(args: argparse.Namespace) -> int:
    _read_stdin()  # consumed so Claude Code's write never blocks; the line needs nothing from it yet
    color = not (args.no_color or os.environ.get("NO_COLOR"))
    session = os.environ.get("AGENTDECK_SESSION") or None
    target = _target(args.url)
    if target is None:
        print("agentdeck: no gateway running")
        return 0
    url, token = target
    try:
        st = _http_get_json(url, "/admin/status", token)
    except (OSError, ValueError) as e:
        why = "admin token refused" if "HTTP 401" in str(e) else "unreachable"
        print(f"agentdeck: gateway {why} ({url})")
        return 0
    print(line(st, session, color))
    return 0
