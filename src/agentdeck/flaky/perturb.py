"""Perturbations that separate the causes of a flaky test, applied inside one test process.

Each one changes exactly one thing a correct test must not depend on, so a failure rate
that rises under it (against unperturbed runs of the same test alone) names the cause:

- ``contention``: the test shares its core with a busy process (half the CPU, late
  wake-ups); code that asserts on elapsed time or races threads starts failing (timing).
- ``slowclock``: sleeps in background threads take 3x as long plus 50 ms; a test that
  sleeps instead of waiting for its background work starts losing its race (timing).
- ``sandbox``: network connects and DNS are refused; reads are allowed in the project, the
  interpreter and a fresh temp dir, writes in the project and the fresh temp dir; HOME and
  TMPDIR are fresh, and the environment is cut to the essentials; every refused access is
  recorded with what was refused and why (dependency).
- ``limits``: the open-file limit is lowered to what the process already holds plus a
  little, and the address space to what it has plus 512 MiB (resource).

Stdlib only: this runs inside the user's pytest. A process that had these applied is
never reused (each run is a fresh fork or process), so nothing needs undoing.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

ENV_KEEP = (
    "PATH",
    "LANG",
    "LANGUAGE",
    "LC_ALL",
    "LC_CTYPE",
    "TERM",
    "TZ",
    "PYTHONPATH",
    "PYTHONHASHSEED",
    "PYTHONDONTWRITEBYTECODE",
    "VIRTUAL_ENV",
    "SYSTEMROOT",
    "PYTEST_CURRENT_TEST",
    "PYTEST_ADDOPTS",
    "PYTEST_DISABLE_PLUGIN_AUTOLOAD",
    "PYTEST_PLUGINS",
)
SANDBOX_MARK = "blocked by the agentdeck flaky sandbox"


def apply_contention() -> list[int]:
    """CPU contention: this process shares one core with a busy process; returns pids to kill at exit.

    Pinned to the same core as a spinner of equal priority, the test gets half the CPU and
    waits for it after every wake-up, as on a loaded CI machine. Where affinity is not
    available, a busy thread competing for the interpreter stands in for it.
    """
    parent = os.getpid()
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = []
    if cpus and hasattr(os, "fork"):
        cpu = {cpus[parent % len(cpus)]}
        os.sched_setaffinity(0, cpu)
        pid = os.fork()
        if pid == 0:
            try:
                os.sched_setaffinity(0, cpu)
                while os.getppid() == parent:
                    for _ in range(20000):
                        pass
            finally:
                os._exit(0)
        return [pid]

    def hog() -> None:
        while True:
            pass

    threading.Thread(target=hog, name="agentdeck-contention", daemon=True).start()
    return []


def apply_slow_clock(stretch: float = 3.0, extra_s: float = 0.050) -> None:
    """A slowed clock for background work: sleeps outside the main thread take 3x + 50 ms.

    50 ms is more than a busy machine delays a thread's wake-up, so the effect stands out of
    the noise even on a loaded CI runner.

    A correct test waits *for* its background work (join, an event) and cannot tell; a test
    that sleeps a fixed time and hopes the work is done by then starts losing its race.
    """
    original_sleep = time.sleep
    main = threading.main_thread()

    def slow_sleep(seconds: float) -> None:
        if threading.current_thread() is not main and seconds > 0:
            seconds = seconds * stretch + extra_s
        original_sleep(seconds)

    time.sleep = slow_sleep  # type: ignore[assignment]


def open_fd_count() -> int:
    for d in ("/proc/self/fd", "/dev/fd"):
        try:
            return len(os.listdir(d))
        except OSError:
            continue
    return 32


def apply_limits(fd_headroom: int = 24, memory_headroom: int = 512 * 1024 * 1024) -> list[str]:
    """Lower RLIMIT_NOFILE and RLIMIT_AS close to current use; return what was set."""
    try:
        import resource
    except ImportError:  # not POSIX
        return []
    done = []
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = open_fd_count() + fd_headroom
    if soft == resource.RLIM_INFINITY or soft > want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
        done.append(f"RLIMIT_NOFILE={want}")
    try:
        vm = _vm_size()
        if vm:
            soft, hard = resource.getrlimit(resource.RLIMIT_AS)
            want = vm + memory_headroom
            if soft == resource.RLIM_INFINITY or soft > want:
                resource.setrlimit(resource.RLIMIT_AS, (want, hard))
                done.append(f"RLIMIT_AS={want // (1024 * 1024)}MiB")
    except (OSError, ValueError):
        pass
    return done


def _vm_size() -> int:
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class _Sandbox:
    """The audit hook behind ``apply_sandbox``; ``on_block`` reports each refused access."""

    def __init__(self, read_roots: list[str], write_roots: list[str], on_block: Callable[[str], None]) -> None:
        self.read_roots = tuple(sorted({r.rstrip(os.sep) + os.sep for r in read_roots if r}))
        self.write_roots = tuple(sorted({r.rstrip(os.sep) + os.sep for r in write_roots if r}))
        self.on_block = on_block
        self.busy = False

    @staticmethod
    def _norm(path: Any) -> str | None:
        if isinstance(path, int):
            return None
        try:
            p = os.fsdecode(os.fspath(path))
        except TypeError:
            return None
        return os.path.normpath(os.path.join(os.getcwd(), p)) + os.sep

    def _allowed(self, path: Any, write: bool) -> bool:
        p = self._norm(path)
        if p is None:
            return True
        roots = self.write_roots if write else self.read_roots + self.write_roots
        return any(p.startswith(r) for r in roots)

    def _block(self, what: str, exc: BaseException) -> None:
        self.on_block(what)
        raise exc

    def _file_refusal(self, kind: str, shown: str, write: bool) -> PermissionError:
        """Say exactly what was refused and why: which access, and where it would have been allowed."""
        allowed = (
            "the project and the sandbox's temp dir"
            if write
            else "the project, the interpreter and the sandbox's temp dir"
        )
        why = f"{'writes' if write else 'reads'} are allowed only in {allowed}"
        return PermissionError(errno.EACCES, f"{SANDBOX_MARK}: {kind} {shown} refused ({why})")

    def hook(self, event: str, args: tuple[Any, ...]) -> None:
        if self.busy:
            return
        self.busy = True
        try:
            self._check(event, args)
        finally:
            self.busy = False

    def _check(self, event: str, args: tuple[Any, ...]) -> None:
        if event == "open":
            path, mode, flags = (list(args) + [None, None, None])[:3]
            write = False
            if isinstance(mode, str):
                write = any(c in mode for c in "wax+")
            elif isinstance(flags, int):
                write = bool(flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC))
            if not self._allowed(path, write):
                shown = os.fsdecode(os.fspath(path)) if not isinstance(path, int) else str(path)
                kind = "write" if write else "read"
                self._block(f"{kind} {shown}", self._file_refusal(kind, shown, write))
        elif event in ("os.listdir", "os.scandir"):
            path = args[0] if args else "."
            if path is not None and not self._allowed(path if path is not None else ".", False):
                shown = os.fsdecode(os.fspath(path))
                self._block(f"list {shown}", self._file_refusal("list", shown, False))
        elif event in (
            "os.mkdir",
            "os.remove",
            "os.rmdir",
            "os.rename",
            "os.truncate",
            "os.chmod",
            "os.symlink",
            "os.link",
            "os.utime",
        ):
            if args and not self._allowed(args[0], True):
                shown = os.fsdecode(os.fspath(args[0])) if not isinstance(args[0], int) else str(args[0])
                self._block(f"{event[3:]} {shown}", self._file_refusal(event[3:], shown, True))
        elif event in ("socket.connect", "socket.sendto"):
            sock, address = args[0], args[1]
            family = getattr(sock, "family", None)
            if family in (socket.AF_INET, socket.AF_INET6):
                shown = _addr(address)
                self._block(
                    f"connect {shown}",
                    ConnectionRefusedError(
                        errno.ECONNREFUSED, f"{SANDBOX_MARK}: connect to {shown} refused (no network in the sandbox)"
                    ),
                )
            elif (
                family == getattr(socket, "AF_UNIX", None)
                and isinstance(address, (str, bytes))
                and not self._allowed(address, True)
            ):
                self._block(
                    f"connect {os.fsdecode(address)}",
                    ConnectionRefusedError(
                        errno.ECONNREFUSED,
                        f"{SANDBOX_MARK}: connect to {os.fsdecode(address)} refused (a socket outside the project)",
                    ),
                )
        elif event == "socket.getaddrinfo":
            host = args[0] if args else None
            if host is not None and not _is_ip(host):
                shown = os.fsdecode(host) if isinstance(host, bytes) else str(host)
                self._block(f"resolve {shown}", _dns_refusal(shown))
        elif event in ("socket.gethostbyname", "socket.gethostbyname_ex", "socket.gethostbyaddr"):
            host = args[0] if args else ""
            if not _is_ip(host):
                self._block(f"resolve {host}", _dns_refusal(str(host)))


def _dns_refusal(host: str) -> socket.gaierror:
    return socket.gaierror(socket.EAI_NONAME, f"{SANDBOX_MARK}: resolve {host} refused (no DNS in the sandbox)")


def _is_ip(host: Any) -> bool:
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    try:
        ipaddress.ip_address(str(host).split("%")[0])
        return True
    except ValueError:
        return False


def _addr(address: Any) -> str:
    if isinstance(address, tuple) and len(address) >= 2:
        return f"{address[0]}:{address[1]}"
    return str(address)


class _RecordingEnviron(os._Environ):  # type: ignore[name-defined,misc]
    """os.environ that reports reads of the variables the sandbox removed."""

    removed: frozenset[str] = frozenset()
    on_block: Callable[[str], None] = staticmethod(lambda what: None)  # type: ignore[assignment]

    def __getitem__(self, key: str) -> str:
        try:
            return super().__getitem__(key)
        except KeyError:
            if key in type(self).removed:
                type(self).on_block(f"env {key}")
            raise


def apply_sandbox(project_roots: list[str], sandbox_dir: str, on_block: Callable[[str], None]) -> None:
    """Refuse network and files outside the project, and start from a bare environment (see module doc)."""
    home = os.path.join(sandbox_dir, "home")
    tmp = os.path.join(sandbox_dir, "tmp")
    os.makedirs(home, exist_ok=True)
    os.makedirs(tmp, exist_ok=True)
    removed = frozenset(k for k in os.environ if k not in ENV_KEEP and not k.startswith(("LC_", "AGENTDECK_FLAKY")))
    for k in removed:
        del os.environ[k]
    os.environ["HOME"] = home
    os.environ["TMPDIR"] = tmp
    tempfile.tempdir = tmp
    _RecordingEnviron.removed = removed
    _RecordingEnviron.on_block = staticmethod(on_block)  # type: ignore[assignment]
    os.environ.__class__ = _RecordingEnviron
    sys.dont_write_bytecode = True
    reads = [q for p in project_roots for q in (p, os.path.realpath(p))]
    reads += [q for p in sys.path if p and os.path.isdir(p) for q in (os.path.abspath(p), os.path.realpath(p))]
    reads += [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix, os.path.dirname(os.__file__)]
    reads += [
        os.path.dirname(os.path.realpath(sys.executable)),
        "/dev",
        "/proc/self",
        "/sys/devices/system/cpu",
        "/etc/localtime",
    ]
    # Writes inside the project are the project's own business (a shared file there is a
    # resource conflict, not an outside dependency): only writes elsewhere are refused.
    writes = [os.path.realpath(sandbox_dir), sandbox_dir, "/dev/null", "/dev/shm"]
    writes += [q for p in project_roots for q in (p, os.path.realpath(p))]
    box = _Sandbox(reads, writes, on_block)
    sys.addaudithook(box.hook)


# -- state snapshots: what a polluter or state-setter leaves behind -----------------------

_SKIP_TYPES = (type(os), type(apply_sandbox), type, type(len))


def snapshot_state(root: str) -> dict[str, str]:
    """A repr of every plain module-level value in the project's own modules, plus env and cwd."""
    root = os.path.realpath(root) + os.sep
    out: dict[str, str] = {}
    for name, mod in list(sys.modules.items()):
        f = getattr(mod, "__file__", None)
        if not f:
            continue
        rf = os.path.realpath(f)
        if not rf.startswith(root) or "site-packages" in rf or f"{os.sep}." in rf[len(root) - 1 :]:
            continue
        try:
            items = list(vars(mod).items())
        except TypeError:
            continue
        for attr, value in items:
            if (
                attr.startswith("__")
                or isinstance(value, _SKIP_TYPES)
                or callable(value)
                and not isinstance(value, (dict, list, set))
            ):
                continue
            if attr.startswith("@py"):  # assertion-rewrite helpers
                continue
            try:
                out[f"{name}.{attr}"] = _short_repr(value)
            except Exception:  # noqa: BLE001 - a repr that fails is simply not compared
                continue
    for k, v in os.environ.items():
        if k != "PYTEST_CURRENT_TEST":  # pytest itself rewrites it for every test
            out[f"os.environ[{k!r}]"] = repr(v)[:120]
    out["os.getcwd()"] = repr(os.getcwd())
    return out


def _short_repr(value: Any) -> str:
    r = repr(value)
    if " at 0x" in r:  # identity-only reprs change between runs without meaning anything
        r = r.split(" at 0x")[0] + ">"
    return r[:160]


def diff_state(before: dict[str, str], after: dict[str, str], limit: int = 8) -> list[str]:
    changes = []
    # Module state first (what a polluter usually leaves), then the environment and cwd.
    for key in sorted(set(before) | set(after), key=lambda k: (k.startswith("os."), k)):
        a, b = before.get(key), after.get(key)
        if a == b:
            continue
        if a is None:
            changes.append(f"{key} added: {b}")
        elif b is None:
            changes.append(f"{key} removed (was {a})")
        else:
            changes.append(f"{key}: {a} -> {b}")
        if len(changes) >= limit:
            break
    return changes
