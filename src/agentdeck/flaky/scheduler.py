"""Running batches of jobs on an engine: capacity, exclusivity, timeouts, hung and crashed runs.

A job is one run: an order of tests, executed in one fresh process (or in ``copies``
processes started together). The scheduler keeps ``workers`` processes busy, never runs
two jobs with the same ``key`` at once (runs of one test under study must not collide
with each other, or the experiment measures the collision), kills a run whose current test
exceeds the timeout and reports that test as ``timeout``, and continues the rest of that
run's order in a fresh process so one hang does not cost the other tests their run.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from agentdeck.flaky.engine import Launch, RunEngine
from agentdeck.flaky.protocol import derive_seed


class Cancelled(Exception):
    """The caller asked the run to stop."""


@dataclass(slots=True)
class RunRecord:
    """One execution of one test."""

    idx: int
    experiment: str
    job: int
    copy: int
    run: int
    pos: int
    outcome: str
    duration: float = 0.0
    phase: str | None = None
    exc: str | None = None
    errno: int | None = None
    chain: list[str] = field(default_factory=list)
    message: str | None = None
    location: str | None = None
    test_line: str | None = None
    seed: int | None = None
    blocked: list[str] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)
    order_seed: int | None = None
    ts: float = field(default_factory=time.time)


@dataclass
class Job:
    experiment: str
    order: list[int]
    perturb: dict[str, Any] = field(default_factory=dict)
    copies: int = 1
    key: str | None = None
    run: int = 0
    seed: int | None = None  # None: the scheduler draws one (every run gets its own random seeds)
    offset: int = 0
    order_seed: int | None = None
    target: int | None = None
    id: int = -1
    records: list[RunRecord] = field(default_factory=list)

    def outcome_of(self, idx: int) -> list[str]:
        return [r.outcome for r in self.records if r.idx == idx]


@dataclass
class _Copy:
    deadline: float
    last_pos: int
    done: bool = False
    killed: bool = False
    errored: bool = False


@dataclass
class _Running:
    job: Job
    copies: dict[int, _Copy]
    weight: int


ProgressFn = Callable[[int, int], None]


class Scheduler:
    def __init__(
        self, engine: RunEngine, workers: int, timeout: float, cancel: threading.Event | None = None, seed: int = 0
    ) -> None:
        self.engine = engine
        self.rng = random.Random(seed)
        self.all_jobs: list[Job] = []
        self.workers = max(1, workers)
        self.timeout = timeout
        self.cancel = cancel
        self.next_id = 0
        self.records: list[RunRecord] = []
        self.warnings: list[str] = []
        self.jobs_run = 0
        self.skipped_jobs = 0

    def run(
        self,
        jobs: list[Job],
        progress: ProgressFn | None = None,
        skip: Callable[[Job], bool] | None = None,
        on_done: Callable[[Job], None] | None = None,
    ) -> list[Job]:
        """Run every job (and any continuation) to completion; records land on each job and in ``records``.

        ``skip(job)`` is asked just before a job would start (an experiment that has its answer
        drops the rest of its runs); ``on_done(job)`` hears about each finished job.
        """
        pending: list[Job] = list(jobs)
        for job in pending:
            job.id = self._new_id()
            if job.seed is None:
                job.seed = self.rng.randrange(2**31)
        self.all_jobs = list(pending)
        by_id: dict[int, Job] = {j.id: j for j in pending}
        running: dict[int, _Running] = {}
        total = sum(len(j.order) * j.copies for j in jobs)
        done = 0
        last_report = 0.0
        while pending or running:
            if self.cancel is not None and self.cancel.is_set():
                for rj in running.values():
                    self.engine.kill(rj.job.id)
                raise Cancelled()
            done += self._admit(pending, running, skip)
            now = time.monotonic()
            wait = (
                min(
                    (c.deadline for rj in running.values() for c in rj.copies.values() if not c.done), default=now + 0.2
                )
                - now
            )
            for msg in self.engine.poll(min(max(wait, 0.0), 0.2)):
                job = by_id.get(msg.get("j", -1))
                rj = running.get(msg.get("j", -1))
                if job is None or rj is None:
                    continue
                kind = msg.get("t")
                copy = rj.copies.get(int(msg.get("c", 0)))
                if copy is None:
                    continue
                if kind == "r":
                    rec = self._record(job, msg)
                    job.records.append(rec)
                    self.records.append(rec)
                    copy.last_pos = rec.pos
                    copy.deadline = time.monotonic() + self.timeout
                    done += 1
                elif kind == "end":
                    copy.done = True
                elif kind == "err":
                    copy.errored = True
                    self.warnings.append(f"internal error in a run ({job.experiment}): {msg.get('m')}")
                elif kind == "exit" and not copy.done:
                    copy.done = True
                    done += self._abnormal_exit(job, int(msg.get("c", 0)), copy, msg, pending, by_id)
                if all(c.done for c in rj.copies.values()):
                    del running[job.id]
                    self.jobs_run += 1
                    if on_done is not None:
                        on_done(job)
            now = time.monotonic()
            for rj in running.values():
                for c in rj.copies.values():
                    if not c.done and not c.killed and now > c.deadline:
                        c.killed = True
                        self.engine.kill(rj.job.id)
            if progress is not None and (now - last_report > 0.05 or not (pending or running)):
                progress(min(done, total), total)
                last_report = now
        if progress is not None:
            progress(total, total)
        return jobs

    def _new_id(self) -> int:
        self.next_id += 1
        return self.next_id

    def _admit(self, pending: list[Job], running: dict[int, _Running], skip: Callable[[Job], bool] | None) -> int:
        """Start what fits; return the number of test runs skipped (for progress)."""
        skipped = 0
        used = sum(rj.weight for rj in running.values())
        busy_keys = {rj.job.key for rj in running.values() if rj.job.key is not None}
        i = 0
        while i < len(pending) and used < self.workers:
            job = pending[i]
            weight = min(job.copies, self.workers)
            if (job.key is not None and job.key in busy_keys) or (used + weight > self.workers and used > 0):
                i += 1
                continue
            pending.pop(i)
            if skip is not None and skip(job):
                skipped += len(job.order) * job.copies
                self.skipped_jobs += 1
                continue
            start = time.monotonic()
            grace = self.engine.startup_grace + (5.0 if job.copies > 1 else 0.0)
            running[job.id] = _Running(
                job, {c: _Copy(start + self.timeout + grace, job.offset - 1) for c in range(job.copies)}, weight
            )
            self.engine.launch(Launch(job.id, job.order, job.seed or 0, job.offset, job.perturb, job.copies))
            used += weight
            if job.key is not None:
                busy_keys.add(job.key)
        return skipped

    def _record(self, job: Job, msg: dict[str, Any]) -> RunRecord:
        return RunRecord(
            idx=int(msg["i"]),
            experiment=job.experiment,
            job=job.id,
            copy=int(msg.get("c", 0)),
            run=job.run,
            pos=int(msg["p"]),
            outcome=str(msg["o"]),
            duration=float(msg.get("d", 0.0)),
            phase=msg.get("ph"),
            exc=msg.get("e"),
            errno=msg.get("en"),
            chain=list(msg.get("ch") or []),
            message=msg.get("m"),
            location=msg.get("l"),
            test_line=msg.get("tl"),
            seed=msg.get("s"),
            blocked=list(msg.get("b") or []),
            changes=list(msg.get("changes") or []),
            order_seed=job.order_seed,
        )

    def _abnormal_exit(
        self, job: Job, copy: int, state: _Copy, msg: dict[str, Any], pending: list[Job], by_id: dict[int, Job]
    ) -> int:
        """A run died (killed for a timeout, or crashed): blame the test it was in; continue the rest."""
        k = state.last_pos - job.offset + 1
        if state.errored or k >= len(job.order):
            return max(0, len(job.order) - k) if state.errored else 0
        idx = job.order[k]
        if state.killed:
            outcome, text = "timeout", f"killed after {self.timeout:g} s without finishing (hung)"
        else:
            sig, code = int(msg.get("sig", 0)), int(msg.get("code", 0))
            outcome, text = (
                "crashed",
                (
                    f"the test process died from signal {sig}"
                    if sig
                    else f"the test process exited with code {code} mid-test"
                ),
            )
        rec = RunRecord(
            idx=idx,
            experiment=job.experiment,
            job=job.id,
            copy=copy,
            run=job.run,
            pos=job.offset + k,
            outcome=outcome,
            duration=self.timeout if state.killed else 0.0,
            phase="call",
            exc=outcome.capitalize(),
            message=text,
            order_seed=job.order_seed,
            seed=int(job.perturb["seed"])
            if job.perturb.get("seed") is not None
            else derive_seed(job.seed or 0, job.offset + k, copy),
        )
        job.records.append(rec)
        self.records.append(rec)
        rest = job.order[k + 1 :]
        if rest:
            experiment = "continued" if job.experiment in ("same-order", "shuffled") else job.experiment
            cont = Job(
                experiment,
                rest,
                dict(job.perturb),
                1,
                job.key,
                job.run,
                job.seed,
                job.offset + k + 1,
                job.order_seed,
                job.target,
            )
            cont.id = self._new_id()
            by_id[cont.id] = cont
            self.all_jobs.append(cont)
            pending.insert(0, cont)
        return 1
