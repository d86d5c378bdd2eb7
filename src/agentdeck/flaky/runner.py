"""The flaky-test runner: schedules experiments, not just reruns.

Phases (each a batch of jobs on the engine, spread over ``workers`` processes):

1. runs: ``runs`` same-order runs of the suite; with diagnosis also ``shuffles`` shuffled
   runs (seeds recorded) and every test once alone. A test that failed somewhere and
   passed somewhere is a candidate.
2. alone: each candidate ``alone_runs`` times alone, one at a time: the control every
   experiment is compared with.
3. order: a candidate that always does the same thing alone but did the opposite in some
   run is bisected over the tests that ran before it (polluter / state-setter), and the
   pair is re-run to confirm.
   A candidate that also fails sometimes alone, but more often after other tests, is
   bisected by failure rate (a polluter of a partially order-dependent test).
4. perturb: the other candidates run alone under each perturbation (timing, dependency,
   resource) and replay the random seed of a failing run (randomness), that seed again with
   time shrunk and under other timezones/locales (timing or environment, not randomness).
   Broken tests run under the other timezones/locales too: one that passes there says so.
5. hunt (``--hunt``): every test, not only the failing ones, under the stress experiments
   (see :mod:`hunt`), within the budget; latent flaky tests are confirmed alone.

Then :mod:`analysis` turns the records into verdicts.
"""

from __future__ import annotations

import os
import random
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentdeck.flaky.analysis import (
    Diagnosis,
    TestVerdict,
    alone_counts,
    build_verdicts,
    tally,
)
from agentdeck.flaky.engine import FlakyError, make_engine
from agentdeck.flaky.envshift import variants as env_variants
from agentdeck.flaky.experiments import (
    CONTEXT,
    UNPERTURBED,
    Bisection,
    EarlyStop,
    RateBisection,
    evaluate_treatments,
    failed,
    passed,
    perturbation_jobs,
    pick_context,
    signature,
)
from agentdeck.flaky.hunt import HuntResult, run_hunt
from agentdeck.flaky.stats import fisher_greater
from agentdeck.flaky.scheduler import Job, RunRecord, Scheduler

PHASES = ("collect", "runs", "alone", "order", "perturb", "hunt", "done")
PHASE_LABELS = {
    "collect": "collecting tests",
    "runs": "same-order, shuffled and isolated runs",
    "alone": "candidates alone (control)",
    "order": "bisecting order dependence",
    "perturb": "perturbation experiments",
    "hunt": "hunting latent flaky tests under stress",
    "done": "done",
}


@dataclass
class FlakyOptions:
    project_dir: Path = field(default_factory=Path.cwd)
    pytest_args: list[str] = field(default_factory=list)
    runs: int = 50
    workers: int | None = None
    timeout: float = 60.0
    shuffles: int = 10
    alone_runs: int = 20
    diagnose: bool = True
    engine: str = "auto"
    seed: int | None = None
    python: str = sys.executable
    keep_tmp: bool = False
    hunt: bool = False
    budget_s: float = 600.0  # hunt mode: the whole session's time budget
    timing_follow_ups: bool = True  # the stretch experiment and the shrunk-time/other-TZ seed replays


@dataclass
class Progress:
    phase: str
    done: int
    total: int
    tests: int = 0
    failing: int = 0
    message: str = ""

    @property
    def label(self) -> str:
        return PHASE_LABELS.get(self.phase, self.phase)


@dataclass
class FlakyReport:
    runs: int
    tests: list[TestVerdict]
    project: str
    pytest_args: list[str]
    engine: str
    workers: int
    seed: int
    started_at: float
    duration_s: float
    phases: dict[str, float]
    warnings: list[str]
    records: list[RunRecord] = field(repr=False, default_factory=list)
    nodeids: list[str] = field(repr=False, default_factory=list)
    diagnosed: bool = True
    tmp_dir: str | None = None  # set when --keep-tmp kept it
    hunt: HuntResult | None = None

    def count(self, verdict: str) -> int:
        return sum(t.verdict == verdict for t in self.tests)

    def max_rate(self) -> float:
        return max((t.failure_rate for t in self.tests), default=0.0)

    def to_json(self) -> dict[str, Any]:
        return {
            "runs": self.runs,
            "tests": [t.to_json() for t in self.tests],
            "summary": {
                "tests": len(self.tests),
                "stable": self.count("stable"),
                "flaky": self.count("flaky"),
                "broken": self.count("broken"),
            },
            "project": self.project,
            "pytest_args": self.pytest_args,
            "engine": self.engine,
            "workers": self.workers,
            "seed": self.seed,
            "started_at": self.started_at,
            "duration_s": round(self.duration_s, 3),
            "phases_s": {k: round(v, 3) for k, v in self.phases.items()},
            "warnings": self.warnings,
            **({"hunt": self.hunt.to_json()} if self.hunt is not None else {}),
        }


ProgressCallback = Callable[[Progress], None]


class _Tracker:
    """Turns scheduler progress into Progress events with a live count of failing tests."""

    def __init__(self, callback: ProgressCallback | None, sched: Scheduler | None, n_tests: int) -> None:
        self.callback = callback
        self.sched = sched
        self.n = n_tests
        self.seen = 0
        self.failing: set[int] = set()

    def phase(self, phase: str) -> Callable[[int, int], None]:
        def report(done: int, total: int) -> None:
            self.emit(phase, done, total)

        return report

    def emit(self, phase: str, done: int, total: int, message: str = "") -> None:
        if self.sched is not None:
            recs = self.sched.records
            for r in recs[self.seen :]:
                if r.experiment in ("same-order", "shuffled", "isolated", "alone", "continued") and failed(r.outcome):
                    self.failing.add(r.idx)
            self.seen = len(recs)
        if self.callback is not None:
            self.callback(Progress(phase, done, total, self.n, len(self.failing), message))


def _round_robin(groups: list[list[Job]]) -> list[Job]:
    """Interleave per-test job lists so different tests run side by side while each test's runs stay serial."""
    out: list[Job] = []
    longest = max((len(g) for g in groups), default=0)
    for k in range(longest):
        for g in groups:
            if k < len(g):
                out.append(g[k])
    return out


def run_flaky(
    opts: FlakyOptions, progress: ProgressCallback | None = None, cancel: threading.Event | None = None
) -> FlakyReport:
    started = time.time()
    t0 = time.monotonic()
    seed = opts.seed if opts.seed is not None else random.SystemRandom().randrange(2**31)
    rng = random.Random(seed)
    workers = max(1, opts.workers or os.cpu_count() or 1)
    project = Path(opts.project_dir).resolve()
    if not project.is_dir():
        raise FlakyError(f"project directory not found: {project}")
    if opts.runs < 1:
        raise FlakyError("--runs must be at least 1")
    tmp = Path(tempfile.mkdtemp(prefix="agentdeck-flaky-"))
    phases: dict[str, float] = {}
    tracker = _Tracker(progress, None, 0)
    tracker.emit("collect", 0, 1)
    engine = None
    try:
        engine = make_engine(
            opts.engine, opts.python, project, list(opts.pytest_args), tmp, startup_timeout=max(300.0, opts.timeout)
        )
        warnings = list(engine.warnings)
        nodeids = engine.collected.items
        if engine.collected.errors and "--continue-on-collection-errors" not in opts.pytest_args:
            first = engine.collected.errors[0]
            raise FlakyError(
                f"pytest could not collect {first['nodeid'] or 'the tests'}: {first['m'].strip()[:300]} "
                f"({len(engine.collected.errors)} collection error(s); fix them first)"
            )
        if not nodeids:
            raise FlakyError(f"pytest collected no tests in {project}")
        phases["collect"] = time.monotonic() - t0
        n = len(nodeids)
        sched = Scheduler(engine, workers, opts.timeout, cancel, seed=rng.randrange(2**31))
        tracker = _Tracker(progress, sched, n)
        jobs_by_id: dict[int, Job] = {}

        def run(phase: str, jobs: list[Job], **kw: Any) -> list[Job]:
            if not jobs:
                return jobs
            started_phase = time.monotonic()
            sched.run(jobs, tracker.phase(phase), **kw)
            for j in sched.all_jobs:
                jobs_by_id[j.id] = j
            phases[phase] = phases.get(phase, 0.0) + time.monotonic() - started_phase
            return jobs

        everyone = list(range(n))
        jobs = [Job("same-order", everyone, run=r) for r in range(opts.runs)]
        if opts.diagnose:
            for k in range(opts.shuffles):
                order_seed = rng.randrange(2**31)
                order = everyone[:]
                random.Random(order_seed).shuffle(order)
                jobs.append(Job("shuffled", order, run=k, order_seed=order_seed))
            jobs += [Job("isolated", [i], target=i) for i in everyone]
        run("runs", jobs)

        diagnoses: dict[int, Diagnosis] = {}
        if opts.diagnose:
            _, counts = tally(sched.records, n)
            candidates = [i for i in everyone if 0 < counts[i][0] < counts[i][1]]
            run(
                "alone",
                _round_robin(
                    [
                        [Job("alone", [i], key=f"t{i}", run=r, target=i) for r in range(opts.alone_runs)]
                        for i in candidates
                    ]
                ),
            )
            for i in candidates:
                diagnoses[i] = Diagnosis(alone=alone_counts(sched.records, i))
            _order_phase(candidates, diagnoses, sched.records, jobs_by_id, run)
            variants = env_variants() if opts.timing_follow_ups else []
            _perturb_phase(candidates, diagnoses, sched, run, n, opts.timing_follow_ups, variants)
            _broken_env_phase(everyone, diagnoses, sched, run, n, variants)
        hunt = None
        if opts.hunt:
            deadline = t0 + opts.budget_s
            hunt = run_hunt(everyone, sched, run, deadline, env_variants())
            hunt.nodeids = nodeids
        tracker.emit("done", 1, 1)
        verdicts = build_verdicts(
            nodeids, sched.records, diagnoses, Path(engine.collected.root), opts.timeout, opts.diagnose, hunt
        )
        warnings += sched.warnings
        return FlakyReport(
            runs=opts.runs,
            tests=verdicts,
            project=str(project),
            pytest_args=list(opts.pytest_args),
            engine=engine.name,
            workers=workers,
            seed=seed,
            started_at=started,
            duration_s=time.monotonic() - t0,
            phases=phases,
            warnings=warnings,
            records=sched.records,
            nodeids=nodeids,
            diagnosed=opts.diagnose,
            tmp_dir=str(tmp) if opts.keep_tmp else None,
            hunt=hunt,
        )
    finally:
        if engine is not None:
            engine.close()
        if not opts.keep_tmp:
            shutil.rmtree(tmp, ignore_errors=True)


RunPhase = Callable[..., list[Job]]


def _order_phase(
    candidates: list[int],
    diagnoses: dict[int, Diagnosis],
    records: list[RunRecord],
    jobs_by_id: dict[int, Job],
    run: RunPhase,
) -> None:
    bisections: list[Bisection | RateBisection] = []
    for i in candidates:
        d = diagnoses[i]
        fails, total = d.alone
        if total and 0 < fails < total:
            # Flaky on its own; a polluter may still make it fail more often: compare rates.
            rb = _rate_bisection(i, d.alone, records, jobs_by_id)
            if rb is not None:
                d.order_attempted = True
                bisections.append(rb)
            continue
        if total == 0:
            continue
        kind, alone_outcome = ("victim", "pass") if fails == 0 else ("brittle", "fail")
        ctx = pick_context(i, alone_outcome, records, jobs_by_id)
        if ctx is None:
            continue
        b = Bisection(i, kind, ctx)
        if b.done:  # it flipped with nothing before it: a fresh process, not an order
            continue
        d.order_attempted = True
        bisections.append(b)
    while True:
        active = [b for b in bisections if not b.done]
        if not active:
            break
        batch: list[tuple[Bisection, list[Job]]] = [(b, b.next_jobs()) for b in active]
        run("order", _round_robin([js for _, js in batch]))
        for b, js in batch:
            b.feed(js)
    for b in bisections:
        diagnoses[b.finding.test].order = b.finding


def _rate_bisection(
    test: int, alone: tuple[int, int], records: list[RunRecord], jobs_by_id: dict[int, Job]
) -> RateBisection | None:
    """A bisection by rate when the test fails clearly more often after other tests than alone."""
    ctx = [r for r in records if r.idx == test and r.experiment in CONTEXT and r.copy == 0]
    ctx_f = sum(failed(r.outcome) for r in ctx)
    # A state signature (FloatingPointError after np.seterr, say) makes a polluter likelier: look sooner.
    state_sig = any(signature(r) == "state" for r in ctx if failed(r.outcome))
    if not ctx or fisher_greater(ctx_f, len(ctx), *alone) >= (0.05 if state_sig else 0.01):
        return None
    # The failing run with the most tests before it: the likeliest to hold the polluter (a
    # short prefix may have failed on the test's own flakiness).
    failing = [jobs_by_id.get(r.job) for r in ctx if failed(r.outcome)]
    runs = [j for j in failing if j is not None and test in j.order]
    if not runs:
        return None
    context = max(runs, key=lambda j: j.order.index(test))
    rb = RateBisection(test, context, alone)
    return None if rb.done else rb


def _broken_env_phase(
    everyone: list[int],
    diagnoses: dict[int, Diagnosis],
    sched: Scheduler,
    run: RunPhase,
    n_tests: int,
    variants: list[str],
) -> None:
    """Run each broken test alone under the other timezones/locales: one that passes there says so."""
    _, counts = tally(sched.records, n_tests)
    broken = [i for i in everyone if counts[i][1] and counts[i][0] == counts[i][1]][:20]
    if not broken or not variants:
        return
    jobs = [
        Job(f"env:{v}", [i], {"env": v}, key=f"t{i}", run=r, target=i) for i in broken for v in variants for r in range(2)
    ]
    run("perturb", _round_robin([[j for j in jobs if j.target == i] for i in broken]))
    for i in broken:
        d = diagnoses.setdefault(i, Diagnosis())
        for v in variants:
            outs = [r.outcome for r in sched.records if r.idx == i and r.experiment == f"env:{v}"]
            if outs and all(passed(o) for o in outs):
                d.passes_under.append(v)


def _perturb_phase(
    candidates: list[int],
    diagnoses: dict[int, Diagnosis],
    sched: Scheduler,
    run: RunPhase,
    n_tests: int,
    follow_ups: bool = True,
    variants: list[str] | None = None,
) -> None:
    records = sched.records
    todo = [i for i in candidates if not (diagnoses[i].order is not None and diagnoses[i].order.confirmed)]
    _, overall = tally(records, n_tests)  # every unperturbed run of each test so far
    groups = []
    for i in todo:
        d = diagnoses[i]
        d.control = d.alone  # perturbed runs are alone: compare with runs alone (one factor changed)
        d.overall = overall[i]
        # `random` is reseeded before every test, so a failing run's seed replays its draws alone too;
        # prefer a run that was alone already (nothing else in the process).
        seeded = sorted(
            (r for r in records if r.idx == i and r.experiment in UNPERTURBED and r.seed is not None),
            key=lambda r: r.experiment not in ("alone", "isolated"),
        )
        d.fail_seed = next((r.seed for r in seeded if failed(r.outcome)), None)
        d.pass_seed = next((r.seed for r in seeded if passed(r.outcome)), None)
        jobs_i = perturbation_jobs(i, d.fail_seed, d.pass_seed, variants if follow_ups else [])
        if not follow_ups:
            jobs_i = [j for j in jobs_i if j.experiment not in ("stretch", "seed-fast")]
        groups.append(jobs_i)
        if d.fail_seed is None:
            d.notes.append("randomness not tested: no failing run had a recorded seed to replay")
    jobs = _round_robin(groups)
    stop = EarlyStop({i: diagnoses[i].control for i in todo}, jobs)
    run("perturb", jobs, skip=stop.skip, on_done=stop.done)
    for i in todo:
        d = diagnoses[i]
        d.treatments = evaluate_treatments(i, records, d.control, d.overall, d.fail_seed, d.pass_seed)
