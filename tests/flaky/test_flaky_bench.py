"""The benchmark code runs end to end on a tiny suite (the real figures come from `agentdeck bench --scenario flaky`)."""

from __future__ import annotations

from pathlib import Path

from agentdeck.bench.flaky import bench_flaky, format_flaky_report, make_suite


def test_bench_suite_has_the_known_problems(tmp_path: Path) -> None:
    suite = make_suite(tmp_path / "suite", 200)
    files = sorted(suite.glob("test_bench_*.py"))
    assert len(files) == 10
    text = "".join(f.read_text() for f in files)
    assert text.count("def test_") == 200
    for name in (
        "test_retry_jitter_in_bounds",
        "test_cache_starts_empty",
        "test_sample_has_no_zero",
        "test_cache_warmup",
    ):
        assert f"def {name}()" in text


def test_bench_measures_plain_reruns_against_the_runner() -> None:
    r = bench_flaky(n_tests=16, runs=2, workers=2, lean=True, engines=("fork",), diagnose=False, seed=2)
    for key in ("plain_s", "plain_cpu_s", "fork_s", "fork_cpu_s", "fork_ratio", "fork_cpu_ratio"):
        assert isinstance(r[key], float) and r[key] > 0, key
    assert len(r["plain_rounds_s"]) == 2 and "diagnosis_s" not in r
    text = format_flaky_report(r)
    assert "plain pytest reruns" in text and "same-order, fork" in text
