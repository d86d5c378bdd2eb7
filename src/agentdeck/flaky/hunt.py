"""Hunt mode: look for *latent* flaky tests, the ones that never fail in plain runs.

The diagnosis only experiments on tests that already failed somewhere. A test that fails
only when four copies share its database, only under a memory limit or only on a slow
network passes every plain run, so no experiment ever looks at it. Hunting runs the whole
suite under each stress, round after round while the budget lasts, then confirms each test
that failed there by running it alone under that stress: one that fails significantly more
often than in its plain runs is reported as latent flaky, with the stress that did it.

Sweeps run the suite in one process per stress (cheap: one fork per stress per round);
the parallel sweep starts 4 copies that meet before every test, so each test really runs
4 times at the same moment.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from agentdeck.flaky.experiments import UNPERTURBED, failed
from agentdeck.flaky.scheduler import Job, RunRecord, Scheduler
from agentdeck.flaky.stats import ALPHA, fisher_greater, rate_likelihood_ratio

MAX_ROUNDS = 6
CONFIRM_RUNS = 6  # runs alone under the stress (parallel: 3 starts of 4 copies)


@dataclass(frozen=True)
class Stress:
    name: str
    cause: str
    label: str
    perturb: dict[str, Any]
    copies: int = 1


def stresses(env_variants: list[str]) -> list[Stress]:
    out = [
        Stress("parallel", "resource", "with 4 copies running each test at the same moment", {"sync": True}, copies=4),
        Stress(
            "contention", "timing", "under CPU contention (sharing its core with a busy process)", {"contention": True}
        ),
        Stress("limits", "resource", "with the file-descriptor and memory limits lowered", {"limits": True}),
        Stress("slownet", "dependency", "over a slow network (every socket call waits 30 ms)", {"slownet": 0.03}),
    ]
    out += [Stress(f"env:{v}", "environment", f"under {v}", {"env": v}) for v in env_variants if v.startswith("TZ=")]
    return out


@dataclass
class Latent:
    """A test that passed every plain run and failed under one stress."""

    test: int
    stress: Stress
    sweep: tuple[int, int]  # failures, runs in the sweeps
    confirm: tuple[int, int] = (0, 0)  # failures, runs alone under the stress
    plain: tuple[int, int] = (0, 0)  # failures, runs unperturbed (0 failures by definition)
    p_value: float = 1.0
    lr: float = 1.0
    confirmed: bool = False
    example: str = ""

    def to_json(self, nodeids: list[str]) -> dict[str, Any]:
        return {
            "nodeid": nodeids[self.test],
            "experiment": self.stress.name,
            "cause": self.stress.cause,
            "sweep": {"runs": self.sweep[1], "failures": self.sweep[0]},
            "alone": {"runs": self.confirm[1], "failures": self.confirm[0]},
            "p_value": self.p_value,
            "confirmed": self.confirmed,
        }


@dataclass
class HuntResult:
    rounds: int = 0
    budget_s: float = 0.0
    spent_s: float = 0.0
    stopped_by_budget: bool = False
    per_stress: dict[str, tuple[int, int]] = field(default_factory=dict)  # test runs, failing runs
    latent: list[Latent] = field(default_factory=list)
    nodeids: list[str] = field(default_factory=list)

    def by_test(self) -> dict[int, Latent]:
        return {lt.test: lt for lt in self.latent}

    def to_json(self) -> dict[str, Any]:
        return {
            "rounds": self.rounds,
            "budget_s": round(self.budget_s, 1),
            "spent_s": round(self.spent_s, 1),
            "stopped_by_budget": self.stopped_by_budget,
            "experiments": {k: {"runs": v[0], "failures": v[1]} for k, v in self.per_stress.items()},
            "latent": [lt.to_json(self.nodeids) for lt in self.latent if lt.confirmed],
        }


RunPhase = Callable[..., list[Job]]


def run_hunt(
    tests: list[int], sched: Scheduler, run: RunPhase, deadline: float, env_variants: list[str]
) -> HuntResult:
    """Sweep the suite under every stress while the budget lasts, then confirm what failed."""
    started = time.monotonic()
    result = HuntResult(budget_s=max(0.0, deadline - started))
    kinds = stresses(env_variants)
    round_s = 0.0
    while result.rounds < MAX_ROUNDS:
        now = time.monotonic()
        # Keep room for the confirmations (about one more round's worth).
        if result.rounds and now + 2.2 * round_s > deadline:
            result.stopped_by_budget = True
            break
        if not result.rounds and now >= deadline:
            result.stopped_by_budget = True
            break
        jobs = [
            Job(f"hunt:{s.name}", list(tests), dict(s.perturb), copies=s.copies, run=result.rounds) for s in kinds
        ]
        t0 = time.monotonic()
        run("hunt", jobs)
        round_s = max(round_s, time.monotonic() - t0)
        result.rounds += 1
    records = sched.records
    plain_fail: dict[int, int] = {}
    plain_runs: dict[int, int] = {}
    for r in records:
        if r.experiment in UNPERTURBED and r.outcome != "skipped":
            plain_runs[r.idx] = plain_runs.get(r.idx, 0) + 1
            plain_fail[r.idx] = plain_fail.get(r.idx, 0) + failed(r.outcome)
    sweep: dict[tuple[int, str], list[RunRecord]] = {}
    for r in records:
        if r.experiment.startswith("hunt:") and r.outcome != "skipped":
            sweep.setdefault((r.idx, r.experiment[5:]), []).append(r)
    for s in kinds:
        recs = [r for (i, name), rs in sweep.items() if name == s.name for r in rs]
        result.per_stress[s.name] = (len(recs), sum(failed(r.outcome) for r in recs))
    candidates: dict[int, Latent] = {}
    for (i, name), recs in sweep.items():
        fails = [r for r in recs if failed(r.outcome)]
        if not fails or plain_fail.get(i, 0) or not plain_runs.get(i):
            continue
        stress = next(s for s in kinds if s.name == name)
        best = candidates.get(i)
        if best is None or len(fails) / len(recs) > best.sweep[0] / max(1, best.sweep[1]):
            candidates[i] = Latent(
                i, stress, (len(fails), len(recs)), plain=(0, plain_runs[i]), example=_example(fails)
            )
    if candidates:
        confirm: list[Job] = []
        for lt in candidates.values():
            n_jobs = 3 if lt.stress.copies > 1 else CONFIRM_RUNS
            confirm += [
                Job(f"hunt-alone:{lt.stress.name}", [lt.test], dict(lt.stress.perturb), copies=lt.stress.copies,
                    key=f"t{lt.test}", run=r, target=lt.test)
                for r in range(n_jobs)
            ]
        run("hunt", confirm)
        for lt in candidates.values():
            recs = [r for r in sched.records if r.idx == lt.test and r.experiment == f"hunt-alone:{lt.stress.name}"]
            f = sum(failed(r.outcome) for r in recs)
            lt.confirm = (f, len(recs))
            total_f, total_n = lt.sweep[0] + f, lt.sweep[1] + len(recs)
            lt.p_value = fisher_greater(total_f, total_n, 0, lt.plain[1])
            lt.lr = rate_likelihood_ratio(total_f, total_n, 0, lt.plain[1])
            # Confirmed: it fails again alone under the stress, and chance is an unlikely explanation.
            lt.confirmed = f > 0 and lt.p_value < ALPHA
            if f and not lt.example:
                lt.example = _example([r for r in recs if failed(r.outcome)])
        result.latent = sorted(candidates.values(), key=lambda lt: lt.test)
    result.spent_s = time.monotonic() - started
    return result


def _example(fails: list[RunRecord]) -> str:
    r = fails[0]
    msg = (r.message or "").strip().splitlines()[0][:160] if r.message else ""
    text = r.exc or r.outcome
    if msg and not msg.startswith(text):
        text += f": {msg}"
    elif msg:
        text = msg
    if r.test_line or r.location:
        text += f" at {r.test_line or r.location}"
    return text
