"""Helpers for the fault tests: a disk to fill and free under a real `agentdeck serve`, raw sockets, polling.

The disk, in order of preference:
- ``tmpfs``: a 4 MB tmpfs mounted on the data dir (needs root / CAP_SYS_ADMIN). Filling it
  gives SQLite a real ENOSPC; deleting the filler frees it.
- ``ulimit -f``: when no tmpfs can be mounted, the gateway process's RLIMIT_FSIZE (what
  ``ulimit -f`` sets) is lowered to 1 KB with ``prlimit``, so every write past the first
  kilobyte of the WAL or the database fails with EFBIG (Python ignores SIGXFSZ); raising
  it again is the "freed" disk.
"""

from __future__ import annotations

import os
import resource
import socket
import subprocess
import time
from pathlib import Path
from typing import Any, Callable

import httpx

from deck_support import ADMIN_TOKEN

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
FILLER = "filler.bin"


def until(pred: Callable[[], Any], what: str, limit_s: float = 30.0) -> Any:
    """Poll ``pred`` until it returns something truthy (and return it); fail after ``limit_s``."""
    end = time.monotonic() + limit_s
    while True:
        got = pred()
        if got:
            return got
        if time.monotonic() > end:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.05)


class Disk:
    """Fill and free the gateway's data dir; ``kind`` is 'tmpfs' or 'ulimit -f'."""

    kind = "?"

    def attach(self, pid: int) -> None:
        """Called once the gateway process runs."""

    def fill(self) -> None:
        raise AssertionError("abstract")

    def free(self) -> None:
        raise AssertionError("abstract")

    def close(self) -> None:
        """Undo the mount (if any)."""


class TmpfsDisk(Disk):
    kind = "tmpfs"

    def __init__(self, root: Path) -> None:
        self.root = root

    def fill(self) -> None:
        for name, chunk in ((FILLER, b"\0" * 65536), (FILLER + ".2", b"\0")):
            try:
                with open(self.root / name, "ab", buffering=0) as f:
                    while True:
                        f.write(chunk)
            except OSError:
                pass

    def free(self) -> None:
        for name in (FILLER, FILLER + ".2"):
            try:
                os.unlink(self.root / name)
            except FileNotFoundError:
                pass

    def close(self) -> None:
        self.free()
        subprocess.run(["umount", "-l", str(self.root)], capture_output=True, check=False)


class FsizeDisk(Disk):
    kind = "ulimit -f"

    def __init__(self, root: Path) -> None:
        self.root = root
        self.pid: int | None = None

    def attach(self, pid: int) -> None:
        self.pid = pid

    def fill(self) -> None:
        assert self.pid is not None
        hard = resource.prlimit(self.pid, resource.RLIMIT_FSIZE)[1]
        # 1 KB: no write past the first kilobyte of any regular file (WAL, database) succeeds.
        resource.prlimit(self.pid, resource.RLIMIT_FSIZE, (1024, hard))

    def free(self) -> None:
        assert self.pid is not None
        try:
            hard = resource.prlimit(self.pid, resource.RLIMIT_FSIZE)[1]
            resource.prlimit(self.pid, resource.RLIMIT_FSIZE, (hard, hard))
        except ProcessLookupError:
            pass  # the gateway has exited: nothing left to free


def small_disk(root: Path, size_kb: int = 4096) -> Disk:
    """A tmpfs on ``root`` if this machine allows mounting one, else the write-limit fallback.

    ``AGENTDECK_TEST_DISK=ulimit`` forces the fallback (to check it where tmpfs works).
    """
    root.mkdir(parents=True, exist_ok=True)
    if os.environ.get("AGENTDECK_TEST_DISK") == "ulimit":
        return FsizeDisk(root)
    try:
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kb}k,mode=0700", "tmpfs", str(root)],
                           capture_output=True, timeout=10, check=False)
        if r.returncode == 0:
            return TmpfsDisk(root)
    except (OSError, subprocess.TimeoutExpired):
        pass
    return FsizeDisk(root)


def chat(url: str, key: str, content: str = "hello", **extra: Any) -> httpx.Response:
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": content}], "max_tokens": 16, **extra}
    return httpx.post(url + "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"}, timeout=20)


def admin_get(url: str, path: str) -> Any:
    r = httpx.get(url + path, headers=ADMIN, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def admin_post(url: str, path: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(url + path, json=body, headers=ADMIN, timeout=20)


def host_port(url: str) -> tuple[str, int]:
    hostport = url.split("//", 1)[1].rstrip("/")
    host, port = hostport.rsplit(":", 1)
    return host.strip("[]"), int(port)


def open_slowloris(url: str, n: int) -> list[socket.socket]:
    """``n`` connections that send half a request's headers and then nothing."""
    host, port = host_port(url)
    socks = []
    for i in range(n):
        s = socket.create_connection((host, port), timeout=10)
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nX-Slow-" + str(i).encode() + b": ")
        socks.append(s)
    return socks


def read_answer(s: socket.socket, limit_s: float = 20.0) -> bytes:
    """Everything the server sends on ``s`` until it closes the connection."""
    s.settimeout(limit_s)
    out = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
    except (ConnectionResetError, socket.timeout):
        pass
    return out
