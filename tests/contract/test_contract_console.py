"""Contract: the console keys, driven through a real terminal (a pty), as a person would.

`agentdeck --config P` (no command = the console, gateway embedded): `!` opens the
emergency-stop confirmation, `escape` cancels it, `enter` confirms it (the embedded gateway,
found through the runtime file it leaves in data_dir, then reports stopped), `?` opens the
help, `q` quits (after a confirmation with `enter` if it asks).
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from contract_support import isolated_env, write_config


class Terminal:
    """A child process on a pty; everything it draws is collected in ``screen``."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: Path) -> None:
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 140, 0, 0))
        self.proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=cwd,
                                     start_new_session=True)
        os.close(slave)
        self.screen = bytearray()

    def pump(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            ready, _, _ = select.select([self.master], [], [], 0.05)
            if ready:
                try:
                    self.screen.extend(os.read(self.master, 65536))
                except OSError:
                    return

    def press(self, keys: bytes, settle: float = 0.6) -> None:
        os.write(self.master, keys)
        self.pump(settle)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        os.close(self.master)


@pytest.mark.parametrize("gateway", ["thread", "process"])
def test_console_keys_stop_cancel_help_quit(tmp_path: Path, gateway: str) -> None:
    """The same keys whether the gateway runs in the console's process (the default) or, with
    ``[tui] gateway = "process"``, in a child process the console attaches to."""
    data = tmp_path / "data"
    cfg = write_config(tmp_path / "console.toml", {"gateway": {"port": 0, "admin_token": "console-admin",
                                                               "data_dir": str(data), "shutdown_grace_s": 1},
                                                   "tui": {"gateway": gateway}})
    env = isolated_env(tmp_path / "home", TERM="xterm-256color", COLUMNS="140", LINES="40", NO_COLOR=None)
    term = Terminal([sys.executable, "-m", "agentdeck", "--config", str(cfg)], env, tmp_path)
    try:
        runtime = data / "gateway.json"
        deadline = time.monotonic() + 40
        while not runtime.exists() and time.monotonic() < deadline and term.proc.poll() is None:
            term.pump(0.1)
        assert runtime.exists(), term.screen.decode("utf-8", "replace")[-2000:]
        info = json.loads(runtime.read_text())
        if gateway == "thread":
            assert info["pid"] == term.proc.pid, "the default console runs the gateway in its own process"
        else:
            assert info["pid"] != term.proc.pid
            assert psutil.Process(info["pid"]).ppid() == term.proc.pid, "the gateway must be the console's child"
        headers = {"Authorization": f"Bearer {info['admin_token']}"}

        def stopped() -> Any:
            return httpx.get(info["url"] + "/admin/status", headers=headers, timeout=5).json()["stopped"]

        term.pump(1.5)  # first paint
        assert stopped() is False
        term.press(b"!")
        assert stopped() is False, "'!' alone must only open the confirmation"
        term.press(b"\x1b")  # escape cancels
        assert stopped() is False, "escape must cancel the emergency stop"
        term.press(b"!")
        term.press(b"\r")  # enter confirms
        assert stopped() is True, "'!' then enter must stop all traffic"

        mark = len(term.screen)
        term.press(b"?")
        assert b"escape closes" in term.screen[mark:], "'?' did not open the help"
        term.press(b"\x1b")

        mark = len(term.screen)
        term.press(b"q", settle=0.2)
        # It asks first while the gateway serves: enter confirms, once the dialog is drawn (an enter
        # pressed before it appears, on a loaded machine, would leave the dialog waiting).
        deadline = time.monotonic() + 15
        while term.proc.poll() is None and b"stop the gateway?" not in term.screen[mark:] \
                and time.monotonic() < deadline:
            term.pump(0.2)
        if term.proc.poll() is None:
            term.press(b"\r", settle=0.2)
        deadline = time.monotonic() + 15
        while term.proc.poll() is None and time.monotonic() < deadline:
            term.pump(0.2)
        assert term.proc.poll() == 0, "q (then enter) must quit the console with exit 0"
        assert not psutil.pid_exists(info["pid"]) or psutil.Process(info["pid"]).status() == psutil.STATUS_ZOMBIE, \
            "quitting the console must not leave its gateway running"
    finally:
        term.close()
