"""A disk that can be filled and freed, for the store's fault tests.

First choice: a small tmpfs mounted on a folder under tmp_path (needs root or CAP_SYS_ADMIN,
true in the dev container). Filling it is a real ENOSPC for SQLite; deleting the filler
frees it. When it cannot be mounted, :func:`mount_small_disk` returns None and the caller
falls back to a write limit (RLIMIT_FSIZE, what ``ulimit -f`` sets) on a child process.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

FILLER = "filler.bin"


class SmallDisk:
    """A mounted tmpfs of ``size_kb``: ``fill()`` takes every free byte, ``free()`` gives them back."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def fill(self) -> None:
        for name, chunk in ((FILLER, b"\0" * 65536), (FILLER + ".2", b"\0")):
            try:
                with open(self.root / name, "ab", buffering=0) as f:
                    while True:
                        f.write(chunk)
            except OSError:
                pass  # ENOSPC: the disk is full (the last partial chunk filled byte by byte)

    def free(self) -> None:
        for name in (FILLER, FILLER + ".2"):
            try:
                os.unlink(self.root / name)
            except FileNotFoundError:
                pass

    def unmount(self) -> None:
        subprocess.run(["umount", "-l", str(self.root)], capture_output=True, check=False)


def mount_small_disk(root: Path, size_kb: int = 2048) -> SmallDisk | None:
    """Mount a tmpfs of ``size_kb`` on ``root`` (created), or None when this machine does not allow it."""
    root.mkdir(parents=True, exist_ok=True)
    try:
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kb}k,mode=0755", "tmpfs", str(root)],
                           capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return SmallDisk(root) if r.returncode == 0 else None
