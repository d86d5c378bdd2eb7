"""The perturbations on their own, each in a fresh interpreter (they patch the process for good, by design)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from agentdeck.flaky.envshift import variants
from agentdeck.flaky.stats import rate_likelihood_ratio


def _py(code: str, cwd: Path, env: dict[str, str] | None = None) -> str:
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=cwd, capture_output=True, text=True, timeout=60, env=env,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_stretched_time_reaches_every_thread_asyncio_and_condition_waits(tmp_path: Path) -> None:
    out = _py(
        """
        import asyncio, threading, time
        from agentdeck.flaky.clock import apply_time_scale
        apply_time_scale(3.0, 0.05)
        def took(fn):
            t = time.monotonic(); fn(); return time.monotonic() - t
        res = {}
        th = threading.Thread(target=lambda: res.setdefault("thread", took(lambda: time.sleep(0.01))))
        th.start(); th.join()
        res["main"] = took(lambda: time.sleep(0.01))
        res["asyncio"] = took(lambda: asyncio.run(asyncio.sleep(0.01)))
        res["event"] = took(lambda: threading.Event().wait(0.01))
        # A sleep never returns early, so each must have lasted at least 3 x 10 ms + 50 ms.
        print(all(v >= 0.08 for v in res.values()), sorted(res))
        """,
        tmp_path,
    )
    assert out.split()[0] == "True" and "asyncio" in out and "event" in out and "thread" in out


def test_shrunk_time_lets_work_beat_a_deadline_it_missed(tmp_path: Path) -> None:
    out = _py(
        """
        import asyncio
        from agentdeck.flaky.clock import apply_time_scale
        async def work():
            await asyncio.sleep(5)
            return "done"
        apply_time_scale(0.05, 0.0)  # 5 s of waiting becomes 0.25 s; the 3 s deadline is untouched
        print(asyncio.run(asyncio.wait_for(work(), timeout=3)))
        """,
        tmp_path,
    )
    assert out.strip() == "done"


def test_sandbox_allows_writes_in_the_project_and_says_what_it_refused(tmp_path: Path) -> None:
    proj = tmp_path / "proj"
    proj.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    out = _py(
        f"""
        import os, socket
        from agentdeck.flaky.perturb import apply_sandbox
        refused = []
        apply_sandbox([{str(proj)!r}], {str(tmp_path / "box")!r}, refused.append)
        os.makedirs("s3:/my-bucket")                      # inside the project: allowed
        open("s3:/my-bucket/a.csv", "w").write("x")
        for action in (lambda: open({str(outside / "x.txt")!r}, "w"),
                       lambda: socket.create_connection(("127.0.0.1", 9), timeout=1)):
            try:
                action()
            except OSError as e:
                print(e)
        print(refused)
        """,
        proj,
    )
    lines = out.strip().splitlines()
    assert "write" in lines[0] and "refused (writes are allowed only in the project and the sandbox's temp dir)" in lines[0]
    assert "connect to 127.0.0.1:9 refused (no network in the sandbox)" in lines[1]
    assert "my-bucket" not in lines[2] and "connect 127.0.0.1:9" in lines[2]
    assert (proj / "s3:" / "my-bucket" / "a.csv").read_text() == "x"


def test_another_timezone_changes_local_time_and_variants_differ_from_the_machine(tmp_path: Path) -> None:
    out = _py(
        """
        import datetime as dt
        from agentdeck.flaky.envshift import apply_env
        ts = dt.datetime(2026, 6, 1, 16, 0, tzinfo=dt.timezone.utc).timestamp()
        apply_env("TZ=America/New_York")
        print(dt.datetime.fromtimestamp(ts).hour)
        """,
        tmp_path,
    )
    assert out.strip() == "12"
    ny = _py(
        "from agentdeck.flaky.envshift import variants; print(variants())",
        tmp_path,
        env=dict(os.environ, TZ="America/New_York"),
    )
    assert "America/New_York" not in ny and "TZ=" in ny
    assert any(v.startswith("LC_ALL=") for v in variants())


def test_the_slow_network_delays_every_socket_call(tmp_path: Path) -> None:
    out = _py(
        """
        import socket, time
        from agentdeck.flaky.envshift import apply_slow_network
        server = socket.socket(); server.bind(("127.0.0.1", 0)); server.listen(1)
        apply_slow_network(0.05)
        t = time.monotonic()
        c = socket.create_connection(server.getsockname()); peer, _ = server.accept()
        c.sendall(b"x"); peer.recv(1)
        print(time.monotonic() - t >= 0.1)  # connect and sendall each waited 50 ms first
        """,
        tmp_path,
    )
    assert out.strip() == "True"


def test_likelihood_ratios_come_from_the_counts_and_have_a_direction() -> None:
    strong = rate_likelihood_ratio(9, 12, 1, 21)  # the "4 copies: 9/12 vs 1/21 alone"
    weak = rate_likelihood_ratio(3, 12, 1, 21)
    assert strong > 100 * weak > 100
    assert rate_likelihood_ratio(0, 16, 8, 20) < 0.1  # a lower rate is evidence against the cause
    assert rate_likelihood_ratio(2, 16, 3, 20) == 1.0 and rate_likelihood_ratio(1, 0, 1, 2) == 1.0
