"""The experiments that name a cause: order bisection and perturbations, as plain data + logic.

The runner builds jobs from these objects and feeds their results back; nothing here runs
a process, so every decision rule can be read (and tested) on its own.

Order (state): a test whose outcome alone is always the same, but flips in some run, is
order-dependent if the flip reproduces in a single process. Bisecting the tests that ran
before it finds the polluter (a victim fails after it) or the state-setter (a brittle test
only passes after it), confirmed by re-running the pair.

Perturbations (timing, dependency, resource, randomness): each compares the failure rate
of the test alone under one change with its rate alone without it (one-sided Fisher exact
test: one factor changed, same harness), or, for randomness, replays the seed of a failing
run. Six experiments
are tried per test, so each must pass ALPHA / 6 (Bonferroni) to count: a cause is named
only when chance is an unlikely explanation for all of them together.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

from agentdeck.flaky.protocol import FAIL_OUTCOMES, PASS_OUTCOMES
from agentdeck.flaky.scheduler import Job, RunRecord
from agentdeck.flaky.stats import ALPHA, fisher_greater, wilson

UNPERTURBED = ("same-order", "shuffled", "isolated", "alone", "continued")
CONTEXT = ("same-order", "shuffled", "continued")

# What a failure's exception says about its cause (supporting evidence only: it never names
# a cause on its own, but a perturbation whose failures carry the matching signature wins a tie).
ERRNO_RESOURCE = {
    98: "EADDRINUSE",
    24: "EMFILE",
    23: "ENFILE",
    12: "ENOMEM",
    28: "ENOSPC",
    11: "EAGAIN",
    48: "EADDRINUSE",
}
EXC_CAUSE = {
    "ConnectionError": "dependency",
    "ConnectionRefusedError": "dependency",
    "ConnectionResetError": "dependency",
    "ConnectionAbortedError": "dependency",
    "gaierror": "dependency",
    "herror": "dependency",
    "URLError": "dependency",
    "HTTPError": "dependency",
    "ConnectError": "dependency",
    "RemoteDisconnected": "dependency",
    "SSLError": "dependency",
    "FileNotFoundError": "dependency",
    "PermissionError": "dependency",
    "KeyError": None,
    "MemoryError": "resource",
    "TimeoutError": "timing",
    "timeout": "timing",
    "Timeout": "timing",
    "ReadTimeout": "timing",
    "CancelledError": "timing",
}


def failed(outcome: str) -> bool:
    return outcome in FAIL_OUTCOMES


def passed(outcome: str) -> bool:
    return outcome in PASS_OUTCOMES


def signature(rec: RunRecord) -> str | None:
    """The cause a single failure's exception points to, if any."""
    if rec.outcome == "timeout":
        return "timing"
    if rec.errno is not None and rec.errno in ERRNO_RESOURCE:
        return "resource"
    for name in [rec.exc or "", *rec.chain]:
        cause = EXC_CAUSE.get(name)
        if cause:
            return cause
    return None


# -- order ----------------------------------------------------------------------------------


@dataclass
class OrderFinding:
    test: int
    kind: str  # "victim" (fails after a polluter) or "brittle" (passes only after a state-setter)
    context: Job
    prefix_len: int
    reproduced: bool = False
    culprit: list[int] = field(default_factory=list)
    confirmed: bool = False
    confirm_flips: int = 0
    confirm_runs: int = 0
    steps: int = 0
    changes: list[str] = field(default_factory=list)


class Bisection:
    """Find the one test (or smallest group found) that flips ``test``'s outcome when run before it."""

    REPRO = 2
    CONFIRM = 3

    def __init__(self, test: int, kind: str, context: Job) -> None:
        prefix = context.order[: context.order.index(test)]
        self.finding = OrderFinding(test, kind, context, len(prefix))
        self.candidates = prefix
        self.state = "repro" if prefix else "done"
        self.halves: tuple[list[int], list[int]] = ([], [])

    @property
    def done(self) -> bool:
        return self.state == "done"

    def flips(self, outcome: str) -> bool:
        return failed(outcome) if self.finding.kind == "victim" else passed(outcome)

    def _job(self, experiment: str, prefix: list[int], run: int = 0, diff: bool = False) -> Job:
        t = self.finding.test
        return Job(experiment, [*prefix, t], {"diff": True} if diff else {}, key=f"t{t}", run=run, target=t)

    def next_jobs(self) -> list[Job]:
        if self.state == "repro":
            return [self._job("bisect", self.candidates, r) for r in range(self.REPRO)]
        if self.state == "bisect":
            h = len(self.candidates) // 2
            self.halves = (self.candidates[:h], self.candidates[h:])
            return [self._job("bisect", self.halves[0], 0), self._job("bisect", self.halves[1], 1)]
        if self.state == "confirm":
            return [self._job("confirm", self.finding.culprit, r) for r in range(self.CONFIRM)] + [
                self._job("statediff", self.finding.culprit, 0, diff=True)
            ]
        return []

    def feed(self, jobs: list[Job]) -> None:
        t = self.finding.test
        outcome = [(j.outcome_of(t) or ["crashed"])[-1] for j in jobs]
        if self.state == "repro":
            if all(self.flips(o) for o in outcome):
                self.finding.reproduced = True
                self._narrow_or_confirm()
            else:
                self.state = "done"
        elif self.state == "bisect":
            self.finding.steps += 1
            if self.flips(outcome[0]):
                self.candidates = self.halves[0]
            elif self.flips(outcome[1]):
                self.candidates = self.halves[1]
            else:  # neither half alone does it: the flip needs tests from both halves together
                self.finding.culprit = list(self.candidates)
                self.state = "confirm"
                return
            self._narrow_or_confirm()
        elif self.state == "confirm":
            confirms = [o for j, o in zip(jobs, outcome, strict=True) if j.experiment == "confirm"]
            self.finding.confirm_runs = len(confirms)
            self.finding.confirm_flips = sum(self.flips(o) for o in confirms)
            self.finding.confirmed = self.finding.confirm_flips == len(confirms) and len(confirms) > 0
            for j in jobs:
                if j.experiment == "statediff":
                    for rec in j.records:
                        if rec.idx in self.finding.culprit and rec.changes:
                            self.finding.changes.extend(c for c in rec.changes if c not in self.finding.changes)
            self.state = "done"

    def _narrow_or_confirm(self) -> None:
        if len(self.candidates) <= 1:
            self.finding.culprit = list(self.candidates)
            self.state = "confirm"
        else:
            self.state = "bisect"


def pick_context(test: int, alone_outcome: str, records: list[RunRecord], jobs: dict[int, Job]) -> Job | None:
    """The run with the fewest tests before ``test`` in which it did the opposite of what it does alone."""
    best: Job | None = None
    for r in records:
        if r.idx != test or r.experiment not in CONTEXT or r.copy != 0:
            continue
        flipped = failed(r.outcome) if alone_outcome == "pass" else passed(r.outcome)
        job = jobs.get(r.job)
        if not flipped or job is None or test not in job.order:
            continue
        if best is None or job.order.index(test) < best.order.index(test):
            best = job
    return best


# -- perturbations --------------------------------------------------------------------------


@dataclass(frozen=True)
class Perturbation:
    name: str
    cause: str
    label: str
    runs: int
    copies: int = 1


PERTURBATIONS = (
    Perturbation("contention", "timing", "under CPU contention (sharing its core with a busy process)", 16),
    Perturbation("slowclock", "timing", "with a slowed clock for background threads (their sleeps 3x + 50 ms)", 16),
    Perturbation(
        "sandbox", "dependency", "in a sandbox (no network, no files outside the project, bare environment)", 16
    ),
    Perturbation("limits", "resource", "with the file-descriptor and memory limits lowered", 16),
    Perturbation("parallel", "resource", "with 4 copies started at the same moment", 4, copies=4),
)
SEED_FAIL_REPLAYS = 8
SEED_PASS_REPLAYS = 4
THRESHOLD = ALPHA / (len(PERTURBATIONS) + 1)  # Bonferroni over the perturbations and the seed replay


@dataclass
class Treatment:
    name: str
    cause: str
    label: str
    runs: int = 0
    failures: int = 0
    p_value: float = 1.0
    control: tuple[int, int] = (0, 0)
    blocked: list[str] = field(default_factory=list)
    signature_hits: int = 0
    examples: list[RunRecord] = field(default_factory=list)
    detail: str = ""

    @property
    def significant(self) -> bool:
        return self.p_value < THRESHOLD

    @property
    def strength(self) -> float:
        """Lower is stronger: the p-value, 100x stronger when the failures carry the cause's signature."""
        return self.p_value * (0.01 if self.signature_hits else 1.0)


def perturbation_jobs(test: int, fail_seed: int | None, pass_seed: int | None) -> list[Job]:
    key = f"t{test}"
    jobs: list[Job] = []
    for p in PERTURBATIONS:
        for r in range(p.runs):
            jobs.append(Job(p.name, [test], {p.name: True}, copies=p.copies, key=key, run=r, target=test))
    if fail_seed is not None:
        jobs += [
            Job("seed-fail", [test], {"seed": fail_seed}, key=key, run=r, target=test) for r in range(SEED_FAIL_REPLAYS)
        ]
        if pass_seed is not None:
            jobs += [
                Job("seed-pass", [test], {"seed": pass_seed}, key=key, run=r, target=test)
                for r in range(SEED_PASS_REPLAYS)
            ]
    return jobs


def evaluate_treatments(
    test: int,
    records: list[RunRecord],
    control: tuple[int, int],
    overall: tuple[int, int],
    fail_seed: int | None,
    pass_seed: int | None,
) -> list[Treatment]:
    """Compare each perturbation's failure rate with the test's runs alone (``control``: failures, runs).

    ``overall`` (failures, runs over every unperturbed run) estimates the test's own failure
    rate for the seed replay.
    """
    out: list[Treatment] = []
    mine = [r for r in records if r.idx == test]
    for p in PERTURBATIONS:
        recs = [r for r in mine if r.experiment == p.name]
        if not recs:
            continue
        fails = [r for r in recs if failed(r.outcome)]
        t = Treatment(p.name, p.cause, p.label, len(recs), len(fails), control=control)
        t.p_value = fisher_greater(len(fails), len(recs), control[0], control[1])
        t.signature_hits = sum(1 for r in fails if signature(r) == p.cause)
        t.examples = fails[:3]
        for r in recs:
            for b in r.blocked:
                if b not in t.blocked:
                    t.blocked.append(b)
        if p.name == "sandbox" and not t.blocked:
            # A rate that rises without any refused access is not evidence of a dependency.
            t.p_value = max(t.p_value, THRESHOLD)
        if p.name == "sandbox" and t.blocked:
            t.signature_hits = max(t.signature_hits, sum(1 for r in fails if r.blocked))
        out.append(t)
    if fail_seed is not None:
        f = [r for r in mine if r.experiment == "seed-fail"]
        ok = [r for r in mine if r.experiment == "seed-pass"]
        if f:
            nf = sum(failed(r.outcome) for r in f)
            np_ = sum(failed(r.outcome) for r in ok)
            t = Treatment(
                "seed",
                "randomness",
                "replaying the random seed of a failing run",
                len(f) + len(ok),
                nf,
                control=control,
            )
            if nf == len(f) and np_ <= len(ok) // 4:
                t.p_value = seed_p_value(nf, len(ok), np_, *wilson(overall[0], overall[1]))
            t.detail = f"seed {fail_seed} failed {nf}/{len(f)} replays" + (
                f", seed {pass_seed} passed {len(ok) - np_}/{len(ok)}" if ok else ""
            )
            t.examples = [r for r in f if failed(r.outcome)][:2]
            out.append(t)
    return out


def seed_p_value(fail_replays: int, pass_replays: int, pass_replay_failures: int, lo: float, hi: float) -> float:
    """How likely 'every replay of the failing seed failed, the passing seed mostly passed' is by chance.

    If the seed did not matter, every replay would fail independently at the test's own rate
    p. p is only known to lie in its confidence interval, so take the worst case over it.
    """
    worst = 0.0
    for i in range(41):
        p = lo + (hi - lo) * i / 40
        tail = sum(
            math.comb(pass_replays, k) * p**k * (1 - p) ** (pass_replays - k) for k in range(pass_replay_failures + 1)
        )
        worst = max(worst, p**fail_replays * tail)
    return worst


def best_cause(treatments: list[Treatment]) -> Treatment | None:
    significant = [t for t in treatments if t.significant]
    if not significant:
        return None
    return min(significant, key=lambda t: t.strength)


def exception_summary(recs: list[RunRecord], limit: int = 2) -> list[str]:
    """The most common failures, as 'Type: message at location (n times)'."""
    counts: Counter[tuple[str, str, str]] = Counter()
    for r in recs:
        if not failed(r.outcome):
            continue
        msg = (r.message or "").strip().splitlines()[0][:160] if r.message else ""
        counts[(r.exc or r.outcome, msg, r.test_line or r.location or "")] += 1
    out = []
    for (exc, msg, loc), n in counts.most_common(limit):
        text = exc
        if msg and not msg.startswith(exc):
            text += f": {msg}"
        elif msg:
            text = msg
        if loc:
            text += f" at {loc}"
        out.append(f"{text} ({n}x)" if n > 1 else text)
    return out


class EarlyStop:
    """Skip the rest of an experiment once its answer cannot change.

    Decided: the perturbation already raised the failure rate beyond doubt (p < THRESHOLD/10).
    Futile: even if every remaining run failed, it could not reach significance. For the
    seed replay: one passing replay of the failing seed settles it (the seed does not
    decide the outcome), and the passing-seed replays are then pointless too.
    """

    def __init__(self, control: dict[int, tuple[int, int]], jobs: list[Job]) -> None:
        self.control = control
        self.planned: Counter[tuple[int, str]] = Counter()
        for j in jobs:
            if j.target is not None:
                self.planned[(j.target, j.experiment)] += j.copies
        self.seen: dict[tuple[int, str], list[int]] = {}

    def done(self, job: Job) -> None:
        if job.target is None:
            return
        outcomes = job.outcome_of(job.target) or ["crashed"] * job.copies
        counts = self.seen.setdefault((job.target, job.experiment), [0, 0])
        counts[0] += sum(failed(o) for o in outcomes)
        counts[1] += len(outcomes)

    def skip(self, job: Job) -> bool:
        t = job.target
        if t is None or t not in self.control:
            return False
        if job.experiment == "seed-fail":
            f, n = self.seen.get((t, "seed-fail"), [0, 0])
            return f < n
        if job.experiment == "seed-pass":
            f, n = self.seen.get((t, "seed-fail"), [0, 0])
            return f < n or n == 0
        f, n = self.seen.get((t, job.experiment), [0, 0])
        if n < 4:
            return False
        cf, cn = self.control[t]
        if fisher_greater(f, n, cf, cn) < THRESHOLD / 10:
            return True
        remaining = self.planned[(t, job.experiment)] - n
        return fisher_greater(f + remaining, n + remaining, cf, cn) >= THRESHOLD
