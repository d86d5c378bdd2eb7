"""Engines that execute runs: a fork server (collect once, fork per run) or a process per run.

Both speak the same protocol (see ``protocol.py``): the runner launches a *job* (an order of
test indices, a seed, perturbations, a number of simultaneous copies) and reads JSON
records back from one pipe. Which engine is faster is measured by ``agentdeck.bench.flaky``; the
numbers are in docs/flaky.md.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import agentdeck
from agentdeck.errors import AgentdeckError
from agentdeck.flaky.protocol import BLOCKED_PLUGINS, ENV_FDS, ENV_TMP, kill_group

PLUGIN = "agentdeck.flaky.plugin"


class FlakyError(AgentdeckError):
    """The test suite could not be run (pytest failed to start or to collect)."""


@dataclass
class Collected:
    items: list[str]
    errors: list[dict[str, str]]
    root: str
    threads: int


@dataclass
class Launch:
    """What an engine needs to start one job."""

    id: int
    order: list[int]
    seed: int
    offset: int = 0
    perturb: dict[str, Any] = field(default_factory=dict)
    copies: int = 1


class RunEngine(Protocol):
    """What the scheduler drives: a way to execute runs of the suite (fork server or a process per run)."""

    name: str
    collected: Collected
    warnings: list[str]
    startup_grace: float

    def launch(self, job: Launch) -> None: ...
    def kill(self, job_id: int, copy: int | None = None) -> None: ...
    def poll(self, timeout: float) -> list[dict[str, Any]]: ...
    def close(self) -> None: ...


def block_args() -> list[str]:
    return [a for name in BLOCKED_PLUGINS for a in ("-p", f"no:{name}")]


def pytest_command(python: str, user_args: list[str], extra: list[str], block: bool) -> list[str]:
    return [python, "-m", "pytest", "-p", PLUGIN, *extra, *(block_args() if block else []), *user_args]


def child_env(python: str, tmp_dir: Path, fds: str) -> dict[str, str]:
    env = dict(os.environ)
    env[ENV_TMP] = str(tmp_dir)
    env[ENV_FDS] = fds
    env.pop("PYTEST_XDIST_WORKER", None)
    if os.path.realpath(python) != os.path.realpath(sys.executable):
        # Another interpreter (the project's venv): let it import the plugin from our source tree.
        src = str(Path(agentdeck.__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH", "")) if p)
    return env


class EventPipe:
    """The read end of the shared record pipe, split into JSON messages."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        os.set_blocking(fd, False)
        self.buf = b""
        self.eof = False

    def read(self, timeout: float) -> list[dict[str, Any]]:
        if self.eof:
            return []
        ready, _, _ = select.select([self.fd], [], [], max(0.0, timeout))
        if not ready:
            return []
        return self.drain()

    def drain(self) -> list[dict[str, Any]]:
        chunks = []
        while True:
            try:
                data = os.read(self.fd, 1 << 20)
            except BlockingIOError:
                break
            if not data:
                self.eof = True
                break
            chunks.append(data)
        if not chunks:
            return []
        self.buf += b"".join(chunks)
        lines = self.buf.split(b"\n")
        self.buf = lines.pop()
        out = []
        for line in lines:
            if line:
                try:
                    out.append(json.loads(line))
                except ValueError:
                    continue
        return out

    def close(self) -> None:
        try:
            os.close(self.fd)
        except OSError:
            pass


class _Server:
    """A pytest process running the plugin's fork server; also used just to collect."""

    def __init__(
        self, python: str, project_dir: Path, user_args: list[str], tmp_dir: Path, startup_timeout: float
    ) -> None:
        self.warnings: list[str] = []
        for block in (True, False):
            try:
                self._start(python, project_dir, user_args, tmp_dir, startup_timeout, block)
                if not block:
                    self.warnings.append(
                        "pytest refused the options that disable reordering/retrying plugins "
                        f"({' '.join(block_args())}); results may be affected by them"
                    )
                return
            except _UsageError as e:
                if not block:
                    raise FlakyError(str(e)) from None

    def _start(
        self, python: str, project_dir: Path, user_args: list[str], tmp_dir: Path, startup_timeout: float, block: bool
    ) -> None:
        cmd_r, cmd_w = os.pipe()
        ev_r, ev_w = os.pipe()
        log_path = tmp_dir / f"server-{int(block)}.log"
        self.log_path = log_path
        with open(log_path, "wb") as log:
            self.proc = subprocess.Popen(
                pytest_command(python, user_args, ["--agentdeck-serve"], block),
                cwd=project_dir,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
                pass_fds=(cmd_r, ev_w),
                env=child_env(python, tmp_dir, f"{cmd_r},{ev_w}"),
                start_new_session=True,
            )
        os.close(cmd_r)
        os.close(ev_w)
        os.set_blocking(cmd_w, False)
        self.cmd_fd = cmd_w
        self.events = EventPipe(ev_r)
        self.pending: list[dict[str, Any]] = []
        deadline = time.monotonic() + startup_timeout
        while True:
            for msg in self.events.read(0.1):
                if msg.get("t") == "collected":
                    self.collected = Collected(
                        msg["items"],
                        msg.get("errors", []),
                        msg.get("root", str(project_dir)),
                        int(msg.get("threads", 1)),
                    )
                    return
                self.pending.append(msg)
            code = self.proc.poll()
            if code is not None or self.events.eof:
                code = self.proc.wait()
                self.close()
                tail = _tail(log_path)
                if code == 4 and block and "unrecognized arguments" in tail:
                    raise _UsageError(tail)
                if code == 5 or "no tests ran" in tail:
                    raise FlakyError(f"pytest collected no tests in {project_dir}")
                raise FlakyError(f"pytest exited with code {code} before collecting: {tail or 'no output'}")
            if time.monotonic() > deadline:
                self.close()
                raise FlakyError(f"pytest did not finish collecting within {startup_timeout:.0f} s")

    def send(self, msg: dict[str, Any]) -> None:
        """Write one command; while the pipe is full, keep reading events (the server may be waiting on us)."""
        data = (json.dumps(msg, separators=(",", ":")) + "\n").encode()
        view = memoryview(data)
        try:
            while view:
                try:
                    n = os.write(self.cmd_fd, view)
                except BlockingIOError:
                    self.pending += self.events.read(0.05)
                    if self.proc.poll() is not None:
                        raise BrokenPipeError("the fork server exited") from None
                    continue
                view = view[n:]
        except (BrokenPipeError, OSError) as e:
            raise FlakyError(f"the pytest fork server died ({e}); see its output with --keep-tmp") from None

    def close(self) -> None:
        if getattr(self, "cmd_fd", -1) >= 0:
            try:
                self.send({"op": "quit"})
            except FlakyError:
                pass
            try:
                os.close(self.cmd_fd)
            except OSError:
                pass
            self.cmd_fd = -1
        proc = getattr(self, "proc", None)
        if proc is not None and proc.poll() is None:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                kill_group(proc.pid)
                proc.wait()
        if hasattr(self, "events"):
            self.events.close()


class _UsageError(Exception):
    pass


def _tail(path: Path, lines: int = 6) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    interesting = [ln for ln in text if ln.strip() and not ln.startswith(("=", "_"))]
    return " | ".join(interesting[-lines:])[:800]


class ForkEngine:
    """Collect once in a pytest process, then fork a child per run (POSIX)."""

    name = "fork"

    def __init__(
        self, python: str, project_dir: Path, user_args: list[str], tmp_dir: Path, startup_timeout: float = 300.0
    ) -> None:
        self.server = _Server(python, project_dir, user_args, tmp_dir, startup_timeout)
        self.collected = self.server.collected
        self.warnings = list(self.server.warnings)
        self.startup_grace = 2.0

    def launch(self, job: Launch) -> None:
        self.server.send(
            {
                "op": "launch",
                "j": job.id,
                "o": job.order,
                "off": job.offset,
                "s": job.seed,
                "pt": job.perturb,
                "n": job.copies,
            }
        )

    def kill(self, job_id: int, copy: int | None = None) -> None:
        self.server.send({"op": "kill", "j": job_id, "c": copy})

    def poll(self, timeout: float) -> list[dict[str, Any]]:
        out = self.server.pending
        self.server.pending = []
        out += self.server.events.read(0 if out else timeout)
        if self.server.events.eof or self.server.proc.poll() is not None:
            out += self.server.events.drain()
            raise FlakyError(
                f"the pytest fork server exited unexpectedly: {_tail(self.server.log_path) or 'no output'}"
            )
        return out

    def close(self) -> None:
        self.server.close()


class SubprocessEngine:
    """A fresh `python -m pytest` per run: fully independent, pays start-up and collection every time."""

    name = "subprocess"

    def __init__(
        self, python: str, project_dir: Path, user_args: list[str], tmp_dir: Path, startup_timeout: float = 300.0
    ) -> None:
        started = time.monotonic()
        server = _Server(python, project_dir, user_args, tmp_dir, startup_timeout)
        # Every run pays start-up and collection again, before its first test can start.
        self.startup_grace = 10.0 + 3 * (time.monotonic() - started)
        self.collected = server.collected
        self.warnings = list(server.warnings)
        self.block = not server.warnings
        server.close()
        self.python, self.project_dir, self.user_args, self.tmp_dir = python, project_dir, user_args, tmp_dir
        ev_r, self.ev_w = os.pipe()
        self.events = EventPipe(ev_r)
        self.procs: dict[tuple[int, int], subprocess.Popen[bytes]] = {}

    def launch(self, job: Launch) -> None:
        for copy in range(job.copies):
            path = self.tmp_dir / f"job-{job.id}-{copy}.json"
            path.write_text(
                json.dumps(
                    {
                        "j": job.id,
                        "copy": copy,
                        "o": job.order,
                        "off": job.offset,
                        "s": job.seed,
                        "pt": job.perturb,
                        "items": len(self.collected.items),
                    }
                )
            )
            # `--opt=value`: pytest decides the rootdir before it knows plugin options, and would take a
            # separate path argument for a test path (moving the rootdir to our temp dir).
            self.procs[(job.id, copy)] = subprocess.Popen(
                pytest_command(self.python, self.user_args, [f"--agentdeck-job={path}"], self.block),
                cwd=self.project_dir,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                pass_fds=(self.ev_w,),
                env=child_env(self.python, self.tmp_dir, f"-1,{self.ev_w}"),
                start_new_session=True,
            )

    def kill(self, job_id: int, copy: int | None = None) -> None:
        for (j, c), proc in self.procs.items():
            if j == job_id and copy in (None, c):
                kill_group(proc.pid)

    def poll(self, timeout: float) -> list[dict[str, Any]]:
        out = self.events.read(timeout)
        exited = [(key, proc.returncode) for key, proc in self.procs.items() if proc.poll() is not None]
        if exited:
            out += self.events.drain()  # whatever they wrote before exiting comes before their exit
            for (j, c), code in exited:
                del self.procs[(j, c)]
                out.append(
                    {"t": "exit", "j": j, "c": c, "code": code if code >= 0 else -1, "sig": -code if code < 0 else 0}
                )
        return out

    def close(self) -> None:
        for proc in self.procs.values():
            kill_group(proc.pid)
            proc.wait()
        self.procs.clear()
        try:
            os.close(self.ev_w)
        except OSError:
            pass
        self.events.close()


def make_engine(
    kind: str, python: str, project_dir: Path, user_args: list[str], tmp_dir: Path, startup_timeout: float = 300.0
) -> ForkEngine | SubprocessEngine:
    """``auto`` prefers the fork server (measured faster) unless fork is unsafe there."""
    if kind == "subprocess" or (kind == "auto" and not hasattr(os, "fork")):
        return SubprocessEngine(python, project_dir, user_args, tmp_dir, startup_timeout)
    if kind not in ("auto", "fork"):
        raise FlakyError(f"unknown engine {kind!r} (auto, fork or subprocess)")
    engine = ForkEngine(python, project_dir, user_args, tmp_dir, startup_timeout)
    if kind == "auto" and engine.collected.threads > 1:
        # Threads started at import time do not survive fork (their locks may be held): use processes.
        engine.close()
        sub = SubprocessEngine(python, project_dir, user_args, tmp_dir, startup_timeout)
        sub.warnings.append(
            f"the test modules start {engine.collected.threads - 1} thread(s) at import; "
            "forking would copy their locks, so each run is a fresh process"
        )
        return sub
    return engine
