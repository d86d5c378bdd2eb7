"""From run records and experiment results to a verdict, a cause, its evidence and a fix.

Counting rule: a test's ``runs`` and ``failures`` cover every *unperturbed* run of it (the
same-order runs, shuffled runs, runs alone, and runs continued after a hang), because each
is a legitimate way the test gets run (a CI order, ``-k``, xdist's split). Perturbed runs
(contention, sandbox, ...) are experiments and never count. So: ``stable`` = no failure,
``broken`` = failed every one of them, ``flaky`` = anything in between. The same-order
figures alone (what a plain rerun loop would have seen) are kept in ``same_order``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentdeck.flaky.experiments import (
    ERRNO_RESOURCE,
    UNPERTURBED,
    OrderFinding,
    Treatment,
    best_cause,
    confidence,
    exception_summary,
    failed,
    posterior,
    signature,
    signature_of,
    signature_priors,
)
from agentdeck.flaky.hunt import HuntResult, Latent
from agentdeck.flaky.hints import Hints, source_hints
from agentdeck.flaky.scheduler import RunRecord
from agentdeck.flaky.stats import rate_likelihood_ratio, wilson

CAUSES = ("timing", "dependency", "resource", "state", "randomness", "environment", "unknown")
EVIDENCE_KINDS = ("experiment", "signature")
VERDICTS = ("stable", "flaky", "broken")


@dataclass
class Diagnosis:
    """What the experiments found for one flaky test."""

    alone: tuple[int, int] = (0, 0)
    control: tuple[int, int] = (0, 0)  # failures, runs alone: what the perturbations (also alone) are compared with
    overall: tuple[int, int] = (0, 0)  # failures, runs over every unperturbed run: the test's own rate
    order: OrderFinding | None = None
    order_attempted: bool = False
    treatments: list[Treatment] = field(default_factory=list)
    fail_seed: int | None = None
    pass_seed: int | None = None
    notes: list[str] = field(default_factory=list)
    passes_under: list[str] = field(default_factory=list)  # broken tests: environments it passes in


@dataclass
class TestVerdict:
    __test__ = False  # not a pytest test class, despite the name

    nodeid: str
    runs: int
    failures: int
    failure_rate: float
    ci95: tuple[float, float]
    verdict: str
    root_cause: str | None
    evidence: list[str]
    recommendation: str
    same_order: tuple[int, int] = (0, 0)  # (failures, runs)
    breakdown: dict[str, tuple[int, int]] = field(default_factory=dict)
    culprit: str | None = None
    timeouts: int = 0
    confidence: float | None = None  # 0-1, for a named cause
    evidence_kind: str | None = None  # "experiment" (an experiment confirmed it) or "signature" (the exceptions)
    confirmed: bool | None = None
    latent: bool = False  # passed every plain run; failed under a hunt-mode stress
    stress: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "nodeid": self.nodeid,
            "runs": self.runs,
            "failures": self.failures,
            "failure_rate": round(self.failure_rate, 4),
            "verdict": self.verdict,
            "root_cause": self.root_cause,
            "evidence": self.evidence,
            "recommendation": self.recommendation,
            "ci95": [round(self.ci95[0], 4), round(self.ci95[1], 4)],
            "same_order": {"runs": self.same_order[1], "failures": self.same_order[0]},
            "breakdown": {k: {"runs": v[1], "failures": v[0]} for k, v in self.breakdown.items()},
            "culprit": self.culprit,
            "timeouts": self.timeouts,
            "confidence": None if self.confidence is None else round(self.confidence, 3),
            "evidence_kind": self.evidence_kind,
            "confirmed": self.confirmed,
            "latent": self.latent,
            **({"stress": self.stress} if self.stress is not None else {}),
        }


def pct(x: float) -> str:
    return f"{100 * x:.0f}%" if x >= 0.01 or x == 0 else f"{100 * x:.1f}%"


def tally(records: list[RunRecord], n_tests: int) -> tuple[list[list[RunRecord]], list[tuple[int, int]]]:
    """Per test: its unperturbed, non-skipped records, and (failures, runs)."""
    per: list[list[RunRecord]] = [[] for _ in range(n_tests)]
    for r in records:
        if r.experiment in UNPERTURBED and r.outcome != "skipped":
            per[r.idx].append(r)
    counts = [(sum(failed(r.outcome) for r in recs), len(recs)) for recs in per]
    return per, counts


def alone_counts(records: list[RunRecord], test: int) -> tuple[int, int]:
    recs = [r for r in records if r.idx == test and r.experiment in ("isolated", "alone") and r.outcome != "skipped"]
    return sum(failed(r.outcome) for r in recs), len(recs)


def build_verdicts(
    nodeids: list[str],
    records: list[RunRecord],
    diagnoses: dict[int, Diagnosis],
    root: Path,
    timeout: float,
    diagnosed: bool,
    hunt: HuntResult | None = None,
) -> list[TestVerdict]:
    per, counts = tally(records, len(nodeids))
    skipped = Counter(r.idx for r in records if r.experiment in UNPERTURBED and r.outcome == "skipped")
    out = []
    for i, nodeid in enumerate(nodeids):
        recs = per[i]
        f, n = counts[i]
        breakdown: dict[str, tuple[int, int]] = {}
        for r in recs:
            a, b = breakdown.get(r.experiment, (0, 0))
            breakdown[r.experiment] = (a + failed(r.outcome), b + 1)
        same = breakdown.get("same-order", (0, 0))
        timeouts = sum(r.outcome == "timeout" for r in recs)
        v = TestVerdict(
            nodeid, n, f, f / n if n else 0.0, wilson(f, n), "stable", None, [], "", same, breakdown, None, timeouts
        )
        latent = hunt.by_test().get(i) if hunt is not None else None
        if n == 0:
            v.evidence = [f"skipped in every run ({skipped[i]}x)" if skipped[i] else "never ran"]
        elif f == 0 and latent is not None and latent.confirmed:
            _latent(v, latent, root)
        elif f == 0:
            v.evidence = [f"passed all {n} runs ({_breakdown_text(breakdown)})"]
            if latent is not None:
                v.evidence.append(
                    f"hunt: failed {latent.sweep[0]}/{latent.sweep[1]} {latent.stress.label}, but "
                    f"{latent.confirm[0]}/{latent.confirm[1]} alone under it: not confirmed (p={latent.p_value:.2g})"
                )
        elif f == n:
            _broken(v, recs, timeout)
            d0 = diagnoses.get(i)
            if d0 is not None and d0.passes_under:
                _passes_elsewhere(v, d0.passes_under)
        else:
            v.verdict = "flaky"
            _flaky(v, recs, diagnoses.get(i), nodeids, root, diagnosed)
        out.append(v)
    return out


def _breakdown_text(b: dict[str, tuple[int, int]]) -> str:
    names = {
        "same-order": "same order",
        "shuffled": "shuffled",
        "isolated": "alone",
        "alone": "alone",
        "continued": "after a hang",
    }
    merged: dict[str, tuple[int, int]] = {}
    for k, (f, n) in b.items():
        name = names.get(k, k)
        a, c = merged.get(name, (0, 0))
        merged[name] = (a + f, c + n)
    return ", ".join(f"{k} {f}/{n}" for k, (f, n) in merged.items())


def _broken(v: TestVerdict, recs: list[RunRecord], timeout: float) -> None:
    v.verdict = "broken"
    summary = exception_summary(recs, 1)
    if v.timeouts == v.runs:
        v.evidence = [f"hung in all {v.runs} runs: killed after {timeout:g} s each time"]
        v.recommendation = (
            "Not flaky: the test hangs every time (killed after "
            f"{timeout:g} s). Look for a wait without a timeout, a deadlock or an endless loop; "
            "give every wait a timeout so it fails instead of hanging."
        )
        return
    v.evidence = [f"failed all {v.runs} runs ({_breakdown_text(v.breakdown)})"]
    if summary:
        v.evidence.append(f"always: {summary[0]}")
    if v.timeouts:
        v.evidence.append(f"hung (killed after {timeout:g} s) in {v.timeouts} of them")
    v.recommendation = (
        f"Not flaky: it fails every run{' with ' + summary[0] if summary else ''}. "
        "Fix the code or the test; rerunning will not make it pass."
    )


def _passes_elsewhere(v: TestVerdict, variants: list[str]) -> None:
    where = " and ".join(variants)
    v.evidence.append(f"passes under {where} (2/2 runs alone each): it depends on the machine's environment")
    v.recommendation = (
        f"Not flaky, but environment-dependent: it fails every run here and passes under {where}. "
        "Do not rely on the machine's timezone or locale: pass an explicit tz (zoneinfo.ZoneInfo) or locale, "
        "or set it in a fixture (monkeypatch.setenv('TZ', ...) with time.tzset())."
    )


def _latent(v: TestVerdict, lt: Latent, root: Path) -> None:
    """A test that passed every plain run and failed, confirmed, under a hunt-mode stress."""
    v.verdict = "flaky"
    v.latent = True
    v.root_cause = lt.stress.cause
    v.evidence_kind = "experiment"
    v.confirmed = True
    v.confidence = lt.lr / (1.0 + lt.lr)
    f, n = lt.sweep[0] + lt.confirm[0], lt.sweep[1] + lt.confirm[1]
    v.stress = {"experiment": lt.stress.name, "runs": n, "failures": f}
    v.evidence = [
        f"latent: passed all {v.runs} plain runs ({_breakdown_text(v.breakdown)}), failed {f}/{n} "
        f"{lt.stress.label} (sweeps {lt.sweep[0]}/{lt.sweep[1]}, alone {lt.confirm[0]}/{lt.confirm[1]}; "
        f"p={lt.p_value:.2g})",
        f"cause: {lt.stress.cause}, because it fails {lt.stress.label} and never without",
    ]
    if lt.example:
        v.evidence.append(f"failures: {lt.example}")
    name = v.nodeid.split("::")[-1]
    if lt.stress.name == "parallel":
        v.recommendation = (
            f"Give each run its own resources: {name} fails when 4 copies run it at once ({lt.example or 'a collision'}). "
            "Use tmp_path (or a per-test database/file name) instead of a fixed shared path, and ephemeral ports."
        )
    elif lt.stress.name == "limits":
        v.recommendation = (
            f"Use less: {name} fails under a memory/file-descriptor limit ({lt.example or 'out of resources'}). "
            "Stream or chunk large data instead of holding it at once, and close files and sockets with `with`."
        )
    elif lt.stress.name == "slownet":
        v.recommendation = (
            f"Do not assume a fast network: {name} fails when every socket call is slower. Give network calls "
            "timeouts that hold on a slow link, or replace the service with a fake in the test."
        )
    elif lt.stress.name == "contention":
        v.recommendation = (
            f"Do not assume a fast machine: {name} fails under CPU contention. Wait for conditions (events, joins, "
            "polling with a generous deadline) instead of fixed sleeps or elapsed-time asserts."
        )
    else:
        v.recommendation = (
            f"Do not rely on the machine's timezone/locale: {name} fails {lt.stress.label}. Pass an explicit tz "
            "(zoneinfo.ZoneInfo) or locale, or pin it in a fixture."
        )


def _flaky(
    v: TestVerdict, recs: list[RunRecord], d: Diagnosis | None, nodeids: list[str], root: Path, diagnosed: bool
) -> None:
    lo, hi = v.ci95
    v.evidence.append(
        f"failed {v.failures} of {v.runs} runs ({pct(v.failure_rate)}, 95% CI {pct(lo)}-{pct(hi)}): "
        f"{_breakdown_text(v.breakdown)}"
    )
    fails = [r for r in recs if failed(r.outcome)]
    summary = exception_summary(fails)
    if summary:
        v.evidence.append("failures: " + "; ".join(summary))
    if v.timeouts:
        v.evidence.append(f"hung (killed after the timeout) in {v.timeouts} runs")
    hints = source_hints(root, v.nodeid)
    if d is None or not diagnosed:
        v.root_cause = "unknown"
        sig = Counter(s for s in (signature(r) for r in fails) if s)
        if sig:
            v.evidence.append(f"not diagnosed (--no-diagnose); the exceptions look like {sig.most_common(1)[0][0]}")
        else:
            v.evidence.append("not diagnosed (--no-diagnose)")
        v.recommendation = "Run without --no-diagnose to let the experiments name the cause."
        return
    if d.order is not None and d.order.confirmed:
        _state(v, d.order, nodeids, d.alone)
        return
    if d.order is not None and d.order.partial and not d.order.reproduced and d.order_attempted:
        v.evidence.append(
            f"no polluter: after the {d.order.prefix_len} tests that ran before it in a failing run, it failed no "
            "more often than alone"
        )
    elif d.order is not None and d.order.reproduced is False and d.order_attempted:
        v.evidence.append(
            f"not order-dependent: the failing order did not fail again when replayed in one process "
            f"({d.order.prefix_len} tests before it)"
        )
    if d.order is not None and d.order.partial and d.order.reproduced and not d.order.confirmed:
        v.evidence.append(
            f"fails more often after other tests than alone, but no single polluter was confirmed "
            f"({d.order.confirm_flips}/{d.order.confirm_runs} after the last candidate)"
        )
    if d.alone[1]:
        v.evidence.append(f"alone: {d.alone[0]}/{d.alone[1]} failed")
    priors = signature_priors(fails)
    best = best_cause(d.treatments, priors)
    scores = posterior(d.treatments, priors)
    for t in sorted(d.treatments, key=lambda t: (not t.significant, -t.lr, t.p_value)):
        if t.name.startswith("seed"):
            line = f"{t.label}: {t.detail}"
        else:
            line = f"{t.label}: {t.failures}/{t.runs} failed vs {t.control[0]}/{t.control[1]} alone"
        line += f" (p={t.p_value:.2g}, likelihood ratio {_lr_text(t.lr)}{', significant' if t.significant else ''})"
        if t.overturned:
            line += f"; overturned: {t.overturned}"
        if t.blocked:
            line += "; refused: " + ", ".join(t.blocked[:3])
        if t.signature_hits and t.significant:
            line += f"; {t.signature_hits} failure(s) carry the {t.cause} signature"
        v.evidence.append(line)
    v.evidence.extend(d.notes)
    sig_cause, sig_text, sig_share = _signature(fails)
    if sig_cause is not None:
        v.evidence.append(
            f"signature: {sig_share} of the failures raise {sig_text}, which points to {sig_cause} "
            f"(prior odds {priors.get(sig_cause, 1.0):.1f})"
        )
    if best is None:
        if sig_cause is not None and sig_cause != "state":
            v.root_cause = sig_cause
            v.evidence_kind = "signature"
            v.confirmed = False
            v.confidence = confidence(scores, sig_cause)
            v.evidence.insert(
                1,
                f"cause: {sig_cause} (from the failure signature {sig_text}; no experiment confirmed it)",
            )
            v.recommendation = recommend_signature(sig_cause, sig_text, v, fails, hints)
            return
        v.root_cause = "unknown"
        v.confidence = 0.0
        v.recommendation = (
            "No experiment explained the failures, so no cause is named. Read the failure messages above; "
            "rerun with more --runs to sharpen the rates, or add logging around the failing line"
            + (f" ({fails[0].test_line})" if fails and fails[0].test_line else "")
            + "."
        )
        return
    v.root_cause = best.cause
    v.evidence_kind = "experiment"
    v.confirmed = True
    v.confidence = confidence(scores, best.cause)
    v.evidence.insert(
        1,
        f"cause: {best.cause}, because {best.label} "
        + (
            best.detail
            if best.name.startswith("seed")
            else f"it failed {best.failures}/{best.runs} vs {best.control[0]}/{best.control[1]} alone"
        )
        + f" (p={best.p_value:.2g})",
    )
    v.recommendation = recommend(best, v, fails, hints)


def _lr_text(lr: float) -> str:
    if lr >= 1e4 or (0 < lr < 1e-3):
        return f"{lr:.1e}"
    return f"{lr:.3g}"


def _signature(fails: list[RunRecord]) -> tuple[str | None, str, str]:
    """The most common signature among the failures: (cause, what shows it, 'k/n')."""
    seen = Counter((c, t) for c, t in (signature_of(r) for r in fails) if c)
    if not seen:
        return None, "", ""
    (cause, text), k = seen.most_common(1)[0]
    return cause, text, f"{k}/{len(fails)}"


def _state(v: TestVerdict, o: OrderFinding, nodeids: list[str], alone: tuple[int, int]) -> None:
    v.root_cause = "state"
    v.evidence_kind = "experiment"
    v.confirmed = True
    if o.partial:
        lr = rate_likelihood_ratio(o.confirm_flips, o.confirm_runs, *alone)
    else:
        lr = rate_likelihood_ratio(o.confirm_flips, o.confirm_runs, 0, 1) * 10.0 ** min(o.confirm_flips, 6)
    v.confidence = lr / (1.0 + lr)
    names = [nodeids[i] for i in o.culprit]
    culprit = (
        names[0]
        if len(names) == 1
        else f"{len(names)} tests together ({', '.join(names[:3])}{', ...' if len(names) > 3 else ''})"
    )
    v.culprit = names[0] if len(names) == 1 else ", ".join(names)
    where = f"{o.context.experiment} run #{o.context.run + 1}"
    if o.context.order_seed is not None:
        where += f" (shuffle seed {o.context.order_seed})"
    if o.partial:
        v.evidence.insert(
            1,
            f"cause: state; partially order-dependent victim of a polluter: it fails {alone[0]}/{alone[1]} alone "
            f"but {o.confirm_flips}/{o.confirm_runs} after {culprit} (compared by rate)",
        )
    elif o.kind == "victim":
        v.evidence.insert(
            1,
            f"cause: state; victim of a polluter: it fails after {culprit} "
            f"({o.confirm_flips}/{o.confirm_runs} runs of the pair failed) and passes alone "
            f"({alone[1] - alone[0]}/{alone[1]})",
        )
    else:
        v.evidence.insert(
            1,
            f"cause: state; brittle: it fails alone ({alone[0]}/{alone[1]}) and passes only after the "
            f"state-setter {culprit} ({o.confirm_flips}/{o.confirm_runs} runs of the pair passed)",
        )
    v.evidence.append(f"found by bisecting the {o.prefix_len} tests that ran before it in {where}, {o.steps} step(s)")
    if o.changes:
        v.evidence.append(f"{names[0] if len(names) == 1 else 'they'} change: " + "; ".join(o.changes[:4]))
    change = o.changes[0] if o.changes else None
    if o.kind == "victim":
        v.recommendation = (
            f"Reset the state the polluter leaves: {culprit} "
            + (f"changes {change} " if change else "changes shared state ")
            + f"and never restores it, so {v.nodeid.split('::')[-1]} fails after it. Undo it in the polluter "
            "(monkeypatch, or a fixture that restores it on teardown), or have the victim set up the state it needs."
        )
    else:
        v.recommendation = (
            f"Make the test set up its own state: it only passes after {culprit}"
            + (f", which sets {change}" if change else "")
            + ". Move that setup into a fixture the test requests, so it passes alone and in any order."
        )


def recommend_signature(cause: str, shown: str, v: TestVerdict, fails: list[RunRecord], hints: Hints) -> str:
    """Advice when only the failures' signature names the cause (no experiment reproduced it)."""
    name = v.nodeid.split("::")[-1]
    line = f" at {fails[0].test_line}" if fails and fails[0].test_line else ""
    if cause == "dependency":
        return (
            f"Likely a flaky connection (unconfirmed: the failures raise {shown}{line}, but no experiment made "
            f"{name} fail more). Retry the call with backoff in the code, or replace the peer with a fake the test "
            "controls; rerun with more --runs to confirm."
        )
    if cause == "resource":
        return (
            f"Likely a shared or exhausted resource (unconfirmed: {shown}{line}). Use ephemeral ports, tmp_path and "
            "per-test names, and close what you open."
        )
    if cause == "timing":
        return (
            f"Likely timing (unconfirmed: {shown}{line}). Wait for conditions with a generous deadline instead of "
            "fixed sleeps, and give budgets room for slow machines."
        )
    return f"The failures raise {shown}{line}, which points to {cause}; no experiment confirmed it."


def recommend(best: Treatment, v: TestVerdict, fails: list[RunRecord], hints: Hints) -> str:
    name = v.nodeid.split("::")[-1]
    if best.name == "seed-fast":
        seed = best.detail.split()[1] if best.detail.startswith("seed ") else "N"
        budget = any(signature_of(r)[1] == "a pytest-timeout budget" for r in fails)
        if budget:
            return (
                f"Size the budget for the slow inputs: {name}'s random input (seed {seed}) makes the work run past "
                "its pytest-timeout budget, and it passes once the budget is lifted. Raise the budget for the "
                "largest input, bound the input size, or make the slow path faster; seeding would only hide it."
            )
        where = f" at {hints.sleeps[0]}" if hints.sleeps else ""
        return (
            f"Do not race a fixed deadline: the random draw (seed {seed}) only decides how long {name}'s work "
            f"takes{where}, and the failing seed passes when waits are shorter. Give the deadline room for the "
            "slowest case, or wait for completion (an event, asyncio.wait_for with a generous timeout) instead of "
            "asserting on elapsed time."
        )
    if best.cause == "environment":
        variant = best.name.split(":", 1)[1] if ":" in best.name else "another timezone"
        return (
            f"Do not rely on the machine's timezone/locale: {name} passes under {variant} on the seed that fails "
            "here. Pass an explicit tz (zoneinfo.ZoneInfo / datetime.timezone.utc) or locale to the code, or pin it "
            "in a fixture."
        )
    if best.cause == "timing":
        where = f" at {hints.sleeps[0]}" if hints.sleeps else ""
        return (
            f"Wait on an event instead of sleeping{where}: {name} assumes work finishes within a fixed time. "
            "Use threading.Event.wait(timeout) / Thread.join() / asyncio.Event, or poll for the condition with "
            "a generous deadline, and do not assert on elapsed wall-clock time."
        )
    if best.cause == "dependency":
        target = best.blocked[0] if best.blocked else "an outside service"
        kind, _, what = target.partition(" ")
        if kind == "env":
            return (
                f"Set the environment variable {what} in the test (monkeypatch.setenv in a fixture) instead of "
                "relying on the machine's environment."
            )
        if kind in ("read", "write", "list", "mkdir", "remove", "rename"):
            return (
                f"Stop depending on {what}: create the file in tmp_path (or ship it as test data next to the test) "
                "and point the code at it."
            )
        call = f" ({hints.network[0]})" if hints.network else ""
        return (
            f"Mock the named call: {name} reaches {what or target}{call}. Replace it with a fake in a fixture "
            "(monkeypatch the client, or a stub server the test starts and controls), and keep a separate, "
            "clearly marked integration test for the real service."
        )
    if best.cause == "resource":
        errnos = Counter(r.errno for r in fails + best.examples if r.errno in ERRNO_RESOURCE)
        code = ERRNO_RESOURCE.get(errnos.most_common(1)[0][0]) if errnos else None
        if code == "EADDRINUSE" or hints.fixed_ports:
            where = f" ({hints.fixed_ports[0]})" if hints.fixed_ports else ""
            return (
                f"Use an ephemeral port: {name} binds a fixed port{where} that another run holds at the same "
                "moment. Bind to port 0 and read the port back with getsockname()[1]."
            )
        if code in ("EMFILE", "ENFILE") or best.name == "limits":
            return (
                f"Close handles: {name} runs out of file descriptors (or memory) when the limits are lower. Open "
                "files and sockets with `with`, close them in teardown, and do not keep them in module globals."
            )
        return (
            f"Give each run its own resources: {name} fails when copies run at once. Use tmp_path, ephemeral ports "
            "and per-test names instead of shared fixed ones, and release them in teardown."
        )
    if best.cause == "randomness":
        seed = best.detail.split()[1] if best.detail.startswith("seed ") else "N"
        where = f" ({hints.randomness[0]})" if hints.randomness else ""
        return (
            f"Seed or widen the assertion: the outcome depends on the random draw{where}; seed {seed} fails every "
            "time. Use a local random.Random(seed) (or a seeded fixture), or assert on what holds for every draw. "
            f"Reproduce: pytest -p agentdeck.flaky.plugin --agentdeck-seed={seed} '{v.nodeid}'"
        )
    return "No experiment explained the failures."
