"""The experiments that name a cause: order bisection and perturbations, as plain data + logic.

The runner builds jobs from these objects and feeds their results back; nothing here runs
a process, so every decision rule can be read (and tested) on its own.

Order (state): a test whose outcome alone is always the same, but flips in some run, is
order-dependent if the flip reproduces in a single process. Bisecting the tests that ran
before it finds the polluter (a victim fails after it) or the state-setter (a brittle test
only passes after it), confirmed by re-running the pair.

A test that also fails *sometimes alone* can still have a polluter: its rate after some
test is higher than alone. ``RateBisection`` bisects those by comparing failure rates (a
Fisher test per half), not single outcomes.

Perturbations (timing, dependency, resource, randomness, environment): each compares the
failure rate of the test alone under one change with its rate alone without it (one-sided
Fisher exact test: one factor changed, same harness), or, for randomness, replays the seed
of a failing run. Seven experiments are tried per test (plus the seed replays), so each must
pass ALPHA / 8 (Bonferroni) to count: a cause is named only when chance is an unlikely
explanation for all of them together.

Weighing: every experiment's result is a likelihood ratio from its own counts (a Bayes
factor, ``stats.rate_likelihood_ratio``); the failures' signature (exception type, errno)
is the prior that the experiments confirm or overturn. A seed that decides the outcome is
replayed with time shrunk and budgets lifted, and under another timezone/locale: if it then
passes, the seed only decided *how long* (timing) or *when* (environment), and randomness is
overturned. With no significant experiment the signature's cause is reported, unconfirmed.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

from agentdeck.flaky.protocol import FAIL_OUTCOMES, PASS_OUTCOMES
from agentdeck.flaky.scheduler import Job, RunRecord
from agentdeck.flaky.stats import ALPHA, fisher_greater, rate_likelihood_ratio, wilson

UNPERTURBED = ("same-order", "shuffled", "isolated", "alone", "continued")
CONTEXT = ("same-order", "shuffled", "continued")

# What a failure's exception says about its cause: the prior the experiments confirm or
# overturn, and the cause reported (unconfirmed) when no experiment fires.
ERRNO_RESOURCE = {
    98: "EADDRINUSE",
    24: "EMFILE",
    23: "ENFILE",
    12: "ENOMEM",
    28: "ENOSPC",
    11: "EAGAIN",
    48: "EADDRINUSE",
    17: "EEXIST",
}
ERRNO_DEPENDENCY = {
    104: "ECONNRESET",
    54: "ECONNRESET",
    111: "ECONNREFUSED",
    61: "ECONNREFUSED",
    101: "ENETUNREACH",
    113: "EHOSTUNREACH",
    32: "EPIPE",
}
ERRNO_TIMING = {110: "ETIMEDOUT", 60: "ETIMEDOUT"}
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
    "BrokenPipeError": "dependency",
    "FileNotFoundError": "dependency",
    "PermissionError": "dependency",
    "KeyError": None,
    "MemoryError": "resource",
    "FileExistsError": "resource",
    "OperationalError": "resource",  # sqlite3: "database is locked"
    "FloatingPointError": "state",  # np.seterr(...="raise") left behind by another test
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
    return signature_of(rec)[0]


def signature_of(rec: RunRecord) -> tuple[str | None, str]:
    """(cause, what showed it) for one failure: its errno first, then the exception types."""
    if rec.outcome == "timeout":
        return "timing", "a hang"
    names = [rec.exc or "", *rec.chain]
    for table, cause in ((ERRNO_RESOURCE, "resource"), (ERRNO_DEPENDENCY, "dependency"), (ERRNO_TIMING, "timing")):
        if rec.errno is not None and rec.errno in table:
            return cause, f"{rec.exc or 'OSError'} [{table[rec.errno]}]"
    if rec.exc == "Failed" and "Timeout" in (rec.message or "") and "pytest-timeout" in (rec.message or ""):
        return "timing", "a pytest-timeout budget"
    for name in names:
        cause = EXC_CAUSE.get(name)
        if cause:
            return cause, name
    if "database is locked" in (rec.message or ""):
        return "resource", "database is locked"
    return None, ""


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
    partial: bool = False  # the test also fails sometimes alone: found by comparing rates


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


class RateBisection:
    """A polluter for a test that also fails sometimes alone: bisect by failure *rate*.

    Each step runs each half of the candidates before the test ``RUNS`` times and keeps the
    half whose failure rate is higher than the rate alone (one-sided Fisher, p < STEP_P); the
    last candidate is confirmed against the rate alone at ALPHA (one search per test, not one
    of the perturbations: no Bonferroni share).
    """

    RUNS = 6
    CONFIRM = 12
    STEP_P = 0.05

    def __init__(self, test: int, context: Job, alone: tuple[int, int]) -> None:
        prefix = context.order[: context.order.index(test)]
        self.finding = OrderFinding(test, "victim", context, len(prefix))
        self.finding.partial = True
        self.alone = alone
        self.candidates = prefix
        self.state = "repro" if prefix else "done"
        self.halves: tuple[list[int], list[int]] = ([], [])

    @property
    def done(self) -> bool:
        return self.state == "done"

    def _jobs(self, experiment: str, prefix: list[int], n: int, tag: int = 0) -> list[Job]:
        t = self.finding.test
        return [
            Job(experiment, [*prefix, t], {}, key=f"t{t}", run=tag * 100 + r, target=t) for r in range(n)
        ]

    def next_jobs(self) -> list[Job]:
        if self.state == "repro":
            return self._jobs("bisect", self.candidates, self.RUNS)
        if self.state == "bisect":
            h = len(self.candidates) // 2
            self.halves = (self.candidates[:h], self.candidates[h:])
            first, second = self.halves
            return self._jobs("bisect", first, self.RUNS, 0) + self._jobs("bisect", second, self.RUNS, 1)
        if self.state == "confirm":
            return self._jobs("confirm", self.finding.culprit, self.CONFIRM) + [
                Job("statediff", [*self.finding.culprit, self.finding.test], {"diff": True}, key=f"t{self.finding.test}",
                    target=self.finding.test)
            ]
        return []

    def _rate(self, jobs: list[Job]) -> tuple[int, int]:
        t = self.finding.test
        outs = [(j.outcome_of(t) or ["crashed"])[-1] for j in jobs]
        return sum(failed(o) for o in outs), len(outs)

    def _higher(self, counts: tuple[int, int], p: float) -> bool:
        return fisher_greater(counts[0], counts[1], *self.alone) < p

    def feed(self, jobs: list[Job]) -> None:
        if self.state == "repro":
            counts = self._rate(jobs)
            if self._higher(counts, self.STEP_P):
                self.finding.reproduced = True
                self._narrow_or_confirm()
            else:
                self.state = "done"
        elif self.state == "bisect":
            self.finding.steps += 1
            a = self._rate([j for j in jobs if j.run < 100])
            b = self._rate([j for j in jobs if j.run >= 100])
            pa = fisher_greater(a[0], a[1], *self.alone)
            pb = fisher_greater(b[0], b[1], *self.alone)
            if min(pa, pb) >= self.STEP_P:
                self.finding.culprit = list(self.candidates)
                self.state = "confirm"
                return
            self.candidates = self.halves[0] if pa <= pb else self.halves[1]
            self._narrow_or_confirm()
        elif self.state == "confirm":
            confirms = [j for j in jobs if j.experiment == "confirm"]
            f, n = self._rate(confirms)
            self.finding.confirm_flips, self.finding.confirm_runs = f, n
            self.finding.confirmed = n > 0 and fisher_greater(f, n, *self.alone) < ALPHA
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
    perturb: tuple[tuple[str, object], ...] = ()

    def settings(self) -> dict[str, object]:
        return dict(self.perturb) if self.perturb else {self.name: True}


STRETCH = ((3.0, 0.020), 1 / 3)  # waits 3x + 20 ms, pytest-timeout budgets cut to a third
SHRINK = ((0.05, 0.0), 10.0)  # waits at 5%, budgets lifted 10x
PERTURBATIONS = (
    Perturbation("contention", "timing", "under CPU contention (sharing its core with a busy process)", 16),
    Perturbation("slowclock", "timing", "with a slowed clock for background threads (their sleeps 3x + 50 ms)", 16),
    Perturbation(
        "stretch",
        "timing",
        "with time stretched in every thread (time.sleep, asyncio.sleep, Event/Condition waits 3x + 20 ms; "
        "timeout budgets cut to a third)",
        12,
        perturb=(("timescale", STRETCH[0]), ("budget", STRETCH[1])),
    ),
    Perturbation(
        "sandbox", "dependency", "in a sandbox (no network, no files outside the project, bare environment)", 16
    ),
    Perturbation("limits", "resource", "with the file-descriptor and memory limits lowered", 16),
    Perturbation("parallel", "resource", "with 4 copies started at the same moment", 4, copies=4),
)
SEED_FAIL_REPLAYS = 8
SEED_PASS_REPLAYS = 4
SEED_FAST_REPLAYS = 4
SEED_ENV_REPLAYS = 2
THRESHOLD = ALPHA / 8  # Bonferroni over the perturbations, the seed replay and its follow-ups
SIGNATURE_PRIOR = 4.0  # prior odds gained by a cause when every failure carries its signature


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
    lr: float = 1.0  # likelihood ratio of the counts: this cause against no effect
    overturned: str = ""  # why a significant result does not name its cause after all

    @property
    def significant(self) -> bool:
        return self.p_value < THRESHOLD and not self.overturned


def perturbation_jobs(
    test: int, fail_seed: int | None, pass_seed: int | None, env_variants: list[str] | None = None
) -> list[Job]:
    key = f"t{test}"
    jobs: list[Job] = []
    for p in PERTURBATIONS:
        for r in range(p.runs):
            jobs.append(Job(p.name, [test], p.settings(), copies=p.copies, key=key, run=r, target=test))
    if fail_seed is not None:
        jobs += [
            Job("seed-fail", [test], {"seed": fail_seed}, key=key, run=r, target=test) for r in range(SEED_FAIL_REPLAYS)
        ]
        if pass_seed is not None:
            jobs += [
                Job("seed-pass", [test], {"seed": pass_seed}, key=key, run=r, target=test)
                for r in range(SEED_PASS_REPLAYS)
            ]
        fast = {"seed": fail_seed, "timescale": SHRINK[0], "budget": SHRINK[1]}
        jobs += [Job("seed-fast", [test], fast, key=key, run=r, target=test) for r in range(SEED_FAST_REPLAYS)]
        for v in env_variants or []:
            jobs += [
                Job(f"seed-env:{v}", [test], {"seed": fail_seed, "env": v}, key=key, run=r, target=test)
                for r in range(SEED_ENV_REPLAYS)
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
        t.lr = rate_likelihood_ratio(len(fails), len(recs), control[0], control[1])
        t.signature_hits = sum(1 for r in fails if signature(r) == p.cause)
        t.examples = fails[:3]
        for r in recs:
            for b in r.blocked:
                if b not in t.blocked:
                    t.blocked.append(b)
        if p.name == "sandbox" and not t.blocked:
            # A rate that rises without any refused access is not evidence of a dependency.
            t.p_value = max(t.p_value, THRESHOLD)
            t.lr = min(t.lr, 1.0)
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
                t.lr = 1.0 / max(t.p_value, 1e-300)
            t.detail = f"seed {fail_seed} failed {nf}/{len(f)} replays" + (
                f", seed {pass_seed} passed {len(ok) - np_}/{len(ok)}" if ok else ""
            )
            t.examples = [r for r in f if failed(r.outcome)][:2]
            out.append(t)
            out += _seed_follow_ups(t, mine, fail_seed)
    return out


def _seed_follow_ups(seed: Treatment, mine: list[RunRecord], fail_seed: int) -> list[Treatment]:
    """The failing seed replayed with time shrunk (and budgets lifted) and under other environments.

    If a seed that fails every replay passes once only time or the timezone changed, the seed
    decided how long the work took, or when it ran: the cause is that, not the draw. Each pass
    is 10x evidence (a seed that decides the draw would fail again: 0 of 8 replays passed).
    """
    out: list[Treatment] = []
    groups: dict[str, list[RunRecord]] = {}
    for r in mine:
        if r.experiment == "seed-fast" or r.experiment.startswith("seed-env:"):
            groups.setdefault(r.experiment, []).append(r)
    # seed-fast first: when both shrunk time and another environment let the seed pass, time is the
    # likelier explanation (it changes how long the work takes; a timezone rarely does).
    for name, recs in sorted(groups.items(), key=lambda kv: kv[0] != "seed-fast"):
        passes = sum(passed(r.outcome) for r in recs)
        if name == "seed-fast":
            cause = "timing"
            label = "replaying the failing seed with time shrunk (waits at 5%) and timeout budgets lifted 10x"
        else:
            variant = name.split(":", 1)[1]
            cause, label = "environment", f"replaying the failing seed under {variant}"
        t = Treatment(name, cause, label, len(recs), len(recs) - passes, control=seed.control)
        n_fail = sum(1 for r in mine if r.experiment == "seed-fail")
        t.detail = (
            f"seed {fail_seed} passed {passes}/{len(recs)} replays (it failed {seed.failures}/{n_fail} as it was)"
        )
        if seed.p_value < THRESHOLD and passes * 4 >= len(recs) * 3 and recs:
            t.p_value = seed.p_value
            t.lr = seed.lr * 10.0 ** (passes - (len(recs) - passes))
            seed.overturned = seed.overturned or f"the seed passes when {label[len('replaying the failing seed '):]}"
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


def signature_priors(fails: list[RunRecord]) -> dict[str, float]:
    """Prior odds per cause from the failures' signatures: 1 + SIGNATURE_PRIOR x the share carrying it."""
    counts: Counter[str] = Counter(s for s in (signature(r) for r in fails) if s)
    total = len(fails) or 1
    return {cause: 1.0 + SIGNATURE_PRIOR * n / total for cause, n in counts.items()}


def posterior(treatments: list[Treatment], priors: dict[str, float]) -> dict[str, float]:
    """Each cause's prior odds times the strongest likelihood ratio among its experiments."""
    causes = {t.cause for t in treatments} | set(priors)
    out = {}
    for c in causes:
        lrs = [t.lr for t in treatments if t.cause == c and not t.overturned]
        out[c] = priors.get(c, 1.0) * max(lrs, default=1.0)
    return out


def confidence(scores: dict[str, float], cause: str) -> float:
    """The cause's share of the evidence, against the others and 'none of them' (odds 1)."""
    total = 1.0 + sum(scores.values())
    return scores.get(cause, 0.0) / total


def best_cause(treatments: list[Treatment], priors: dict[str, float] | None = None) -> Treatment | None:
    """The significant experiment whose cause has the most evidence (prior x likelihood ratio)."""
    significant = [t for t in treatments if t.significant]
    if not significant:
        return None
    scores = posterior(treatments, priors or {})
    return max(significant, key=lambda t: (scores.get(t.cause, 0.0), t.lr, -t.p_value))


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
        if job.experiment == "seed-pass" or job.experiment == "seed-fast" or job.experiment.startswith("seed-env:"):
            f, n = self.seen.get((t, "seed-fail"), [0, 0])
            if f < n or n == 0:
                return True
            if job.experiment.startswith("seed-env:"):
                # Shrunk time already let the seed pass: timing explains it; other timezones cannot add to that.
                ff, fn = self.seen.get((t, "seed-fast"), [0, 0])
                return fn > 0 and (fn - ff) * 4 >= fn * 3
            return False
        f, n = self.seen.get((t, job.experiment), [0, 0])
        if n < 4:
            return False
        cf, cn = self.control[t]
        if fisher_greater(f, n, cf, cn) < THRESHOLD / 10:
            return True
        remaining = self.planned[(t, job.experiment)] - n
        return fisher_greater(f + remaining, n + remaining, cf, cn) >= THRESHOLD
