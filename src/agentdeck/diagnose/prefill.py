"""Error descriptions prefilled from what the console already knows: a failed call or a failed test.

Why: the best moment to diagnose is right after the failure, and retyping what the console is
showing is where engineers give up. These turn a row of ``GET /admin/requests`` or a test of the
flaky runner's JSON into a first description the engineer then edits.
"""

from __future__ import annotations

from typing import Any, Mapping


def _first_line(text: Any, limit: int = 300) -> str:
    s = " ".join(str(text or "").split())
    return s if len(s) <= limit else s[: limit - 1] + "…"


def from_failed_request(row: Mapping[str, Any]) -> str:
    """A request row (``id, model_requested, model, tier, status, error, ...``) as a description."""
    model = row.get("model") or row.get("model_requested") or "?"
    requested = row.get("model_requested")
    via = f" (asked for {requested})" if requested and requested != model else ""
    tier = f", {row['tier']} tier" if row.get("tier") else ""
    head = f"Call {row.get('id', '?')} to {model}{via}{tier} failed with status {row.get('status', '?')}"
    error = _first_line(row.get("error"))
    return f"{head}: {error}" if error else head


def from_flaky_test(test: Mapping[str, Any]) -> str:
    """A test from the flaky runner's report (``nodeid, failures, runs, verdict, evidence``)."""
    nodeid = test.get("nodeid", "?")
    runs, failures = test.get("runs"), test.get("failures")
    rate = f" ({failures} of {runs} runs failed)" if runs else ""
    verdict = test.get("verdict")
    what = "fails every run" if verdict == "broken" else ("is flaky" if verdict == "flaky" else "failed")
    evidence = test.get("evidence") or []
    detail = _first_line(evidence[0]) if evidence else ""
    text = f"Test {nodeid} {what}{rate}"
    return f"{text}: {detail}" if detail else text
