"""The registry of live local gateways, in the user's runtime directory.

Why a registry beside the data dir's ``gateway.json``: ``agentdeck demo`` runs on a throw-away
data dir, and a gateway started with another config keeps its own; an on-call engineer in a
second terminal types ``agentdeck status`` with no flags and expects it found. Each running
gateway leaves one small file here (pid, URL, where its admin token is, what started it); the
token itself stays in the data dir's 0600 ``gateway.json``, so listing the registry shows no secret.

Entries whose process is gone (``kill -9``, a crash, a reboot of a non-tmpfs dir) are ignored
and removed the next time anyone reads or registers. Light on purpose: ``statusline`` reads it.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from agentdeck.paths import private_dir, runtime_dir

_SUFFIX = ".json"


class LiveGateway:
    """One registered gateway. (A plain class: ``dataclasses`` costs ``statusline`` 5 ms to import.)"""

    __slots__ = ("pid", "url", "token_file", "kind", "data_dir", "started")

    def __init__(self, pid: int, url: str, token_file: str, kind: str = "serve", data_dir: str = "",
                 started: float = 0.0) -> None:
        self.pid = pid
        self.url = url
        self.token_file = token_file
        self.kind = kind
        self.data_dir = data_dir
        self.started = started

    def to_dict(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in self.__slots__}

    def __repr__(self) -> str:
        return f"LiveGateway({self.kind} pid={self.pid} {self.url})"

    def admin_token(self) -> str:
        """The admin token from the gateway's token file ('' if it is gone or unreadable)."""
        try:
            data = json.loads(Path(self.token_file).read_text())
        except (OSError, ValueError):
            return ""
        tok = data.get("admin_token") if isinstance(data, dict) else None
        return tok if isinstance(tok, str) else ""


def pid_alive(pid: int) -> bool:
    """True while ``pid`` is a running process (a zombie left by ``kill -9`` counts as gone)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
        return stat[stat.rindex(b")") + 2:stat.rindex(b")") + 3] != b"Z"
    except (OSError, ValueError):
        return True  # no /proc (macOS): os.kill said it exists


def _entry_name(pid: int, url: str) -> str:
    port = url.rsplit(":", 1)[-1].strip("/]") or "0"
    return f"gateway-{pid}-{port}{_SUFFIX}"


def _write_private(path: Path, data: dict[str, object]) -> None:
    """Write JSON with mode 0600 from the first byte (no window where another user could read it)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def register(url: str, token_file: Path, *, kind: str, data_dir: Path | str = "", pid: int | None = None,
             directory: Path | None = None) -> Path:
    """Add this process's gateway at ``url``; stale entries are swept first. Returns the entry's path."""
    d = private_dir(directory or runtime_dir())
    live(d)  # sweeps the dead
    entry = LiveGateway(pid=os.getpid() if pid is None else pid, url=url.rstrip("/"), token_file=str(token_file),
                        kind=kind, data_dir=str(data_dir), started=time.time())
    path = d / _entry_name(entry.pid, entry.url)
    _write_private(path, entry.to_dict())
    return path


def unregister(url: str, *, pid: int | None = None, directory: Path | None = None) -> None:
    """Remove this process's entry for ``url`` (no error if it is already gone)."""
    d = directory or runtime_dir()
    try:
        (d / _entry_name(os.getpid() if pid is None else pid, url.rstrip("/"))).unlink()
    except OSError:
        pass


def live(directory: Path | None = None) -> list[LiveGateway]:
    """Registered gateways whose process is alive, oldest first; entries of dead processes are removed."""
    d = directory or runtime_dir()
    try:
        names = sorted(n for n in os.listdir(d) if n.startswith("gateway-") and n.endswith(_SUFFIX))
    except OSError:
        return []
    out = []
    for name in names:
        path = d / name
        try:
            raw = json.loads(path.read_text())
            entry = LiveGateway(pid=int(raw["pid"]), url=str(raw["url"]), token_file=str(raw["token_file"]),
                                kind=str(raw.get("kind", "serve")), data_dir=str(raw.get("data_dir", "")),
                                started=float(raw.get("started", 0.0)))
        except (OSError, ValueError, KeyError, TypeError):
            entry = None
        if entry is None or not pid_alive(entry.pid):
            try:
                path.unlink()
            except OSError:
                pass
            continue
        out.append(entry)
    out.sort(key=lambda e: e.started)
    return out


def find(url: str, directory: Path | None = None) -> LiveGateway | None:
    """The live entry serving ``url``, if any."""
    url = url.rstrip("/")
    return next((e for e in live(directory) if e.url == url), None)
