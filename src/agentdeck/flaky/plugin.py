"""agentdeck's pytest plugin: records every test run; serves forked runs to the flaky runner.

Load it with ``pytest -p agentdeck.flaky.plugin`` (no install step, no entry point: it only
acts when one of its options is given).

- ``--agentdeck-record=PATH`` appends one JSON line per test run to PATH: node id, phase,
  outcome, duration, exception type, crash message and location, position in the order.
  (Write it with ``=``: pytest picks its rootdir before it knows plugin options and would
  otherwise take a separate, existing PATH for a test path.)
- ``--agentdeck-seed N`` seeds ``random`` (and numpy, if loaded) with N before every test,
  to replay a failure the runner traced to a seed.
- ``--agentdeck-serve`` (the runner's fork server): collect once, then fork one child per
  run on request. A fork after collection is as independent as a fresh process (module
  state, fixtures, the random generator are all fresh) without paying interpreter start
  and collection again; gc is disabled in the parent so the children's pages stay shared.
- ``--agentdeck-job FILE`` (the runner's subprocess engine): run one job in this process.

Stdlib and pytest only: it runs inside the user's interpreter.
"""

from __future__ import annotations

import gc
import json
import os
import random
import select
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from agentdeck.flaky import clock as _clock
from agentdeck.flaky import envshift as _envshift
from agentdeck.flaky import perturb as _perturb
from agentdeck.flaky import protocol as P

_real_sleep = time.sleep  # the timing perturbations patch time.sleep; the barrier must not be stretched
SYNC_WAIT_S = 2.0  # how long a synchronised copy waits for the others at a test (a dead copy must not hang it)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("agentdeck-flaky", "agentdeck flaky-test runner")
    group.addoption(
        "--agentdeck-record", metavar="PATH", default=None, help="append one JSON line per test run to PATH"
    )
    group.addoption(
        "--agentdeck-seed", metavar="N", type=int, default=None, help="seed random (and numpy) with N before every test"
    )
    group.addoption(
        "--agentdeck-serve", action="store_true", default=False, help="(internal) fork server for `agentdeck flaky`"
    )
    group.addoption(
        "--agentdeck-job", metavar="FILE", default=None, help="(internal) run one job for `agentdeck flaky`"
    )
    group.addoption(
        "--agentdeck-quarantine",
        metavar="PATH",
        default=None,
        help="mark the tests listed in PATH (`agentdeck flaky --quarantine PATH`) xfail(strict=False)",
    )


QUARANTINE_PREFIX = "--deselect="


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Quarantine: the listed flaky tests still run, but their failures do not fail the build."""
    path = config.getoption("agentdeck_quarantine", None)
    if not path:
        return
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise pytest.UsageError(f"--agentdeck-quarantine: cannot read {path}: {e.strerror}") from None
    ids = {ln.strip().removeprefix(QUARANTINE_PREFIX) for ln in lines if ln.strip()}
    mark = pytest.mark.xfail(strict=False, reason="quarantined as flaky by agentdeck flaky")
    for item in items:
        if item.nodeid in ids:
            item.add_marker(mark)


def pytest_configure(config: pytest.Config) -> None:
    opts = config.option
    if opts.agentdeck_record or opts.agentdeck_seed is not None or opts.agentdeck_serve or opts.agentdeck_job:
        config.pluginmanager.register(FlakyRecorder(config), "agentdeck-flaky-recorder")


def _crash(report: pytest.TestReport, rootpath: Path) -> tuple[str, str]:
    """(message, location) of a failure, as pytest shows it in the short summary."""
    lr = report.longrepr
    rc = getattr(lr, "reprcrash", None)
    if rc is not None:
        return str(rc.message), f"{_rel(rc.path, rootpath)}:{rc.lineno}"
    if isinstance(lr, tuple) and len(lr) == 3:
        return str(lr[2]), f"{_rel(lr[0], rootpath)}:{lr[1]}"
    text = str(lr or "").strip()
    return (text.splitlines()[-1] if text else ""), ""


def _rel(path: Any, rootpath: Path) -> str:
    try:
        return os.path.relpath(str(path), rootpath)
    except ValueError:
        return str(path)


class FlakyRecorder:
    """One test run at a time: gathers its phases into one record and emits it."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.rootpath = Path(config.rootpath)
        opts = config.option
        self.record_path: str | None = opts.agentdeck_record
        self.user_seed: int | None = opts.agentdeck_seed
        self.serve: bool = opts.agentdeck_serve
        self.job_file: str | None = opts.agentdeck_job
        self.cmd_fd = -1
        self.ev_fd = -1
        if self.serve or self.job_file:
            fds = os.environ.get(P.ENV_FDS, "")
            try:
                cmd, ev = (int(x) for x in fds.split(","))
            except ValueError:
                raise pytest.UsageError(
                    f"--agentdeck-serve/--agentdeck-job need {P.ENV_FDS}=<cmd fd>,<event fd>"
                ) from None
            self.cmd_fd, self.ev_fd = cmd, ev
            for fd in (cmd, ev):
                if fd >= 0:
                    os.set_inheritable(fd, False)
        self.tmp_root = os.environ.get(P.ENV_TMP)
        self.collect_errors: list[dict[str, str]] = []
        # The run in progress (set by the child loop; defaults suit plain `pytest -p ...`).
        self.job: int | None = None
        self.copy = 0
        self.job_seed: int | None = None
        self.fixed_seed: int | None = self.user_seed
        self.statediff = False
        self.pos = -1
        self.idx: int | None = None
        self.cur: dict[str, Any] | None = None
        self.exc: dict[str, tuple[str, int | None, list[str], str]] = {}
        self.blocked: list[str] = []
        self.before: dict[str, str] = {}
        self.helpers: list[int] = []  # helper processes (contention spinners) to kill when the run ends
        self.budget_factor: float | None = None  # pytest-timeout budgets scaled by this (tightened or lifted)
        self.sync_dir: str | None = None  # copies of a synchronised parallel run meet here before each test
        self.copies = 1
        self.record_file = None
        if self.record_path:
            os.makedirs(os.path.dirname(os.path.abspath(self.record_path)), exist_ok=True)
            self.record_file = open(self.record_path, "a", encoding="utf-8")  # noqa: SIM115

    # -- recording ---------------------------------------------------------------------

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            msg, _ = _crash(report, self.rootpath)  # type: ignore[arg-type]
            self.collect_errors.append({"nodeid": report.nodeid, "m": msg[:500]})

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logstart(self, nodeid: str, location: tuple[str, int | None, str]) -> None:
        if self.job is None:
            self.pos += 1
        self.cur = {"o": "passed", "d": 0.0}
        self.exc = {}
        self.blocked = []
        if self.statediff:
            self.before = _perturb.snapshot_state(str(self.rootpath))

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        seed = (
            self.fixed_seed
            if self.fixed_seed is not None
            else (P.derive_seed(self.job_seed, self.pos, self.copy) if self.job_seed is not None else None)
        )
        if seed is None:
            return
        random.seed(seed)
        np = sys.modules.get("numpy")
        if np is not None:
            try:
                np.random.seed(seed % (2**32))
            except Exception:  # noqa: BLE001 - a broken numpy must not break the run
                pass
        if self.cur is not None:
            self.cur["s"] = seed

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
        report = yield
        excinfo = call.excinfo
        if excinfo is not None and report.failed:
            exc = excinfo.value
            chain: list[str] = []
            seen = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
            while seen is not None and len(chain) < 4:
                chain.append(type(seen).__name__)
                seen = seen.__cause__ or (None if seen.__suppress_context__ else seen.__context__)
            test_line = ""
            try:
                item_path = str(item.path)
                for entry in reversed(excinfo.traceback):
                    if str(entry.path) == item_path:
                        test_line = f"{_rel(item_path, self.rootpath)}:{entry.lineno + 1}"
                        break
            except Exception:  # noqa: BLE001 - best effort
                pass
            err = getattr(exc, "errno", None)
            self.exc[call.when] = (type(exc).__name__, err if isinstance(err, int) else None, chain, test_line)
        return report

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        cur = self.cur
        if cur is None:
            return
        cur["d"] = round(cur["d"] + (report.duration or 0.0), 6)
        if cur["o"] in P.FAIL_OUTCOMES:
            return
        if report.failed:
            cur["o"] = "failed" if report.when == "call" else "error"
            cur["ph"] = report.when
            msg, loc = _crash(report, self.rootpath)
            cur["m"] = msg[:1500]
            cur["l"] = loc
            exc = self.exc.get(report.when)
            if exc is not None:
                cur["e"], errno_, chain, test_line = exc
                if errno_ is not None:
                    cur["en"] = errno_
                if chain:
                    cur["ch"] = chain
                if test_line:
                    cur["tl"] = test_line
        elif report.skipped:
            cur["o"] = "xfailed" if hasattr(report, "wasxfail") else "skipped"
            if cur["o"] == "skipped":
                cur["ph"] = report.when
        elif report.when == "call" and hasattr(report, "wasxfail"):
            cur["o"] = "xpassed"

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_logfinish(self, nodeid: str, location: tuple[str, int | None, str]) -> None:
        rec = self.cur
        self.cur = None
        if rec is None:
            return
        if self.blocked:
            rec["b"] = self.blocked[:6]
        if self.statediff:
            rec["changes"] = _perturb.diff_state(self.before, _perturb.snapshot_state(str(self.rootpath)))
        if self.ev_fd >= 0 and self.job is not None:
            P.write_record(self.ev_fd, {"t": "r", "j": self.job, "c": self.copy, "p": self.pos, "i": self.idx, **rec})
        if self.record_file is not None:
            self.record_file.write(json.dumps(self._readable(nodeid, rec)) + "\n")
            self.record_file.flush()

    def _readable(self, nodeid: str, rec: dict[str, Any]) -> dict[str, Any]:
        return {
            "ts": time.time(),
            "pid": os.getpid(),
            "nodeid": nodeid,
            "position": self.pos,
            "outcome": rec["o"],
            "phase": rec.get("ph"),
            "duration": rec["d"],
            "exc_type": rec.get("e"),
            "errno": rec.get("en"),
            "message": rec.get("m"),
            "location": rec.get("l"),
            "test_line": rec.get("tl"),
            "seed": rec.get("s"),
        }

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        if self.record_file is not None:
            self.record_file.close()

    def _on_block(self, what: str) -> None:
        if what not in self.blocked:
            self.blocked.append(what[:200])

    # -- the runner's engines ------------------------------------------------------------

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> bool | None:
        if self.serve:
            self._serve(session, list(session.items))
            return True
        if self.job_file:
            self._one_job(session, list(session.items))
            return True
        return None

    def _serve(self, session: pytest.Session, items: list[pytest.Item]) -> None:
        P.write_big(
            self.ev_fd,
            {
                "t": "collected",
                "items": [it.nodeid for it in items],
                "errors": self.collect_errors,
                "pid": os.getpid(),
                "threads": threading.active_count(),
                "root": str(self.rootpath),
            },
        )
        gc.disable()
        children: dict[int, tuple[int, int]] = {}
        buf = b""
        try:
            while True:
                self._reap(children)
                ready, _, _ = select.select([self.cmd_fd], [], [], 0.05 if children else 0.5)
                if not ready:
                    continue
                data = os.read(self.cmd_fd, 1 << 16)
                if not data:
                    return  # the runner went away
                buf += data
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    msg = json.loads(line)
                    op = msg.get("op")
                    if op == "launch":
                        self._launch(session, items, msg, children)
                    elif op == "kill":
                        for pid, (job, copy) in list(children.items()):
                            if job == msg["j"] and msg.get("c") in (None, copy):
                                P.kill_group(pid)
                    elif op == "quit":
                        return
        finally:
            for pid in list(children):
                P.kill_group(pid)
            deadline = time.monotonic() + 5
            while children and time.monotonic() < deadline:
                self._reap(children)
                time.sleep(0.01)

    def _reap(self, children: dict[int, tuple[int, int]]) -> None:
        while children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                children.clear()
                return
            if pid == 0:
                return
            job_copy = children.pop(pid, None)
            if job_copy is None:
                continue
            sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0
            code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else -1
            P.write_record(self.ev_fd, {"t": "exit", "j": job_copy[0], "c": job_copy[1], "code": code, "sig": sig})

    def _launch(
        self,
        session: pytest.Session,
        items: list[pytest.Item],
        msg: dict[str, Any],
        children: dict[int, tuple[int, int]],
    ) -> None:
        copies = int(msg.get("n", 1))
        barrier = os.pipe() if copies > 1 else None
        gc.freeze()
        for copy in range(copies):
            pid = os.fork()
            if pid == 0:
                code = 0
                try:
                    os.setpgid(0, 0)
                    self._child(session, items, msg, copy, barrier)
                except BaseException as e:  # noqa: BLE001 - the child must always exit here
                    code = 3
                    try:
                        P.write_record(
                            self.ev_fd, {"t": "err", "j": msg["j"], "c": copy, "m": f"{type(e).__name__}: {e}"[:500]}
                        )
                    except OSError:
                        pass
                finally:
                    os._exit(code)
            try:
                os.setpgid(pid, pid)
            except OSError:
                pass
            children[pid] = (msg["j"], copy)
        if barrier is not None:
            os.close(barrier[1])  # every child now holds the read end: closing the last writer releases them together
            os.close(barrier[0])

    def _child(
        self,
        session: pytest.Session,
        items: list[pytest.Item],
        msg: dict[str, Any],
        copy: int,
        barrier: tuple[int, int] | None,
    ) -> None:
        os.close(self.cmd_fd)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        if barrier is not None:
            os.close(barrier[1])
        gc.enable()
        random.seed()  # fork copied the parent's generator state: draw fresh entropy like a new process would
        self._fresh_capture()
        self._prepare(msg, copy)
        if barrier is not None:
            os.read(barrier[0], 1)
            os.close(barrier[0])
        self._run_items(session, items, msg, copy)

    def _one_job(self, session: pytest.Session, items: list[pytest.Item]) -> None:
        with open(self.job_file or "", encoding="utf-8") as f:
            msg = json.load(f)
        if int(msg.get("items", len(items))) != len(items):
            P.write_record(
                self.ev_fd,
                {
                    "t": "err",
                    "j": msg["j"],
                    "c": msg.get("copy", 0),
                    "m": f"collected {len(items)} tests, expected {msg.get('items')}",
                },
            )
            return
        copy = int(msg.get("copy", 0))
        self._prepare(msg, copy)
        self._run_items(session, items, msg, copy)

    def _prepare(self, msg: dict[str, Any], copy: int) -> None:
        """Per-run temp dirs, seeds and perturbations."""
        job = int(msg["j"])
        pt: dict[str, Any] = msg.get("pt") or {}
        self.job, self.copy = job, copy
        self.job_seed = int(msg.get("s", 0))
        self.fixed_seed = pt.get("seed")
        self.statediff = bool(pt.get("diff"))
        workdir = None
        if self.tmp_root:
            workdir = os.path.join(self.tmp_root, f"j{job}c{copy}")
            os.makedirs(workdir, exist_ok=True)
            self._fresh_basetemp(os.path.join(workdir, "basetemp"))
        if pt.get("contention"):
            self.helpers += _perturb.apply_contention()
        if pt.get("slowclock"):
            _perturb.apply_slow_clock()
        if pt.get("timescale"):
            factor, extra = pt["timescale"]
            _clock.apply_time_scale(float(factor), float(extra), str(self.rootpath))
        if pt.get("budget"):
            self.budget_factor = float(pt["budget"])
        if pt.get("env"):
            _envshift.apply_env(str(pt["env"]))
        if pt.get("slownet"):
            _envshift.apply_slow_network(float(pt["slownet"]))
        self.copies = int(msg.get("n", 1))
        if pt.get("sync") and self.copies > 1 and self.tmp_root:
            self.sync_dir = os.path.join(self.tmp_root, f"sync-j{job}")
            os.makedirs(self.sync_dir, exist_ok=True)
        if pt.get("limits"):
            _perturb.apply_limits(memory_headroom=int(pt.get("memory_mib", 512)) * 1024 * 1024)
        if pt.get("sandbox"):
            box = workdir or os.path.join(os.environ.get("TMPDIR", "/tmp"), f"agentdeck-sandbox-{os.getpid()}")
            roots = [str(self.rootpath), str(self.config.invocation_params.dir)]
            _perturb.apply_sandbox(roots, box, self._on_block)

    def _run_items(self, session: pytest.Session, items: list[pytest.Item], msg: dict[str, Any], copy: int) -> None:
        order: list[int] = msg["o"]
        offset = int(msg.get("off", 0))
        session.shouldfail = False
        session.shouldstop = False
        for k, idx in enumerate(order):
            item = items[idx]
            nextitem = items[order[k + 1]] if k + 1 < len(order) else None
            self.pos, self.idx = offset + k, idx
            if self.budget_factor is not None:
                _scale_timeout_budget(item, self.budget_factor)
            if self.sync_dir is not None:
                _meet(self.sync_dir, offset + k, copy, self.copies)
            try:
                item.config.hook.pytest_runtest_protocol(item=item, nextitem=nextitem)
            except pytest.fail.Exception as e:
                # A pytest-timeout alarm that fired between the test's phases (the test ran right up
                # to its budget): the test failed by its budget; record it and go on with the order.
                if self.cur is not None:
                    self.cur.update({"o": "failed", "ph": "call", "e": "Failed", "m": str(e)[:1500]})
                    self.pytest_runtest_logfinish(item.nodeid, item.location)
        for pid in self.helpers:
            _killpg_or_pid(pid)
        P.write_record(self.ev_fd, {"t": "end", "j": self.job, "c": copy})

    def _fresh_capture(self) -> None:
        """Children must not share the parent's capture temp files (they would truncate each other's)."""
        capman = self.config.pluginmanager.getplugin("capturemanager")
        old = getattr(capman, "_global_capturing", None)
        if capman is None or old is None:
            return
        try:
            from _pytest.capture import _get_multicapture

            mc = _get_multicapture(capman._method)
            mc.start_capturing()
            mc.suspend_capturing()
            capman._global_capturing = mc
        except Exception:  # noqa: BLE001 - fall back to the shared capture (output may mix, outcomes do not)
            pass

    def _fresh_basetemp(self, path: str) -> None:
        """Each run gets its own tmp_path root (pytest's numbered dirs would race and pile up)."""
        factory = getattr(self.config, "_tmp_path_factory", None)
        if factory is None:
            return
        try:
            factory._given_basetemp = Path(path)
            factory._basetemp = None
        except AttributeError:
            pass


def _scale_timeout_budget(item: pytest.Item, factor: float) -> None:
    """Tighten or lift this test's pytest-timeout budget (its marker, else the ini/command-line one).

    pytest-timeout reads the closest ``timeout`` marker when the test starts, so a marker put
    in front of the test's own ones wins. No budget at all: nothing to scale.
    """
    marker = item.get_closest_marker("timeout")
    method = None
    if marker is not None:
        current = marker.args[0] if marker.args else marker.kwargs.get("timeout")
        method = marker.args[1] if len(marker.args) > 1 else marker.kwargs.get("method")
    else:
        settings = getattr(item.config, "_env_timeout", None)
        current = getattr(settings, "timeout", None)
    try:
        new = _clock.scaled_budget(float(current) if current is not None else None, factor)
    except (TypeError, ValueError):
        return
    if new is None:
        return
    kwargs = {"method": method} if method else {}
    item.add_marker(pytest.mark.timeout(new, **kwargs), append=False)


def _meet(sync_dir: str, pos: int, copy: int, copies: int) -> None:
    """A barrier per test: each copy waits until every copy has reached this test (or SYNC_WAIT_S)."""
    mine = os.path.join(sync_dir, f"{pos}-{copy}")
    with open(mine, "w", encoding="ascii"):
        pass
    deadline = time.monotonic() + SYNC_WAIT_S
    names = [os.path.join(sync_dir, f"{pos}-{c}") for c in range(copies)]
    while time.monotonic() < deadline and not all(os.path.exists(n) for n in names):
        _real_sleep(0.0005)


def _killpg_or_pid(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except OSError:
        pass


