"""`agentdeck mock-upstream` as a real child process: starts, answers, stops on SIGTERM, rejects bad flags."""

from __future__ import annotations

import signal
import subprocess
import sys

import httpx
import openai

from agentdeck.sim import run_mock_process, wait_for_mock


def test_cli_serves_and_stops_cleanly() -> None:
    proc = run_mock_process(0, output_tokens=5, latency_ms=10, rate_429=0.0, seed=4)
    try:
        url = wait_for_mock(proc)
        assert url.startswith("http://127.0.0.1:")
        c = openai.OpenAI(base_url=url + "/v1", api_key="k", max_retries=0)
        r = c.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
        assert r.usage is not None and r.usage.completion_tokens == 5
        assert (r.choices[0].message.content or "").startswith("model=gpt-4o")
        settings = httpx.get(url + "/_mock/settings").json()
        assert (settings["latency_ms"], settings["seed"]) == (10.0, 4)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)


def test_cli_sigint_exits_zero() -> None:
    proc = run_mock_process(0)
    try:
        wait_for_mock(proc)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)


def test_cli_rejects_bad_flags_in_one_line() -> None:
    for flags, needle in ((["--rate-429", "1.5"], "--rate-429"), (["--rps-limit", "0"], "--rps-limit")):
        r = subprocess.run([sys.executable, "-m", "agentdeck", "mock-upstream", *flags], capture_output=True, text=True, timeout=30)
        assert r.returncode == 2, (flags, r.stderr)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and needle in lines[0] and "Traceback" not in r.stderr


def test_cli_port_in_use_is_one_line() -> None:
    proc = run_mock_process(0)
    try:
        url = wait_for_mock(proc)
        port = url.rsplit(":", 1)[1]
        r = subprocess.run([sys.executable, "-m", "agentdeck", "mock-upstream", "--port", port],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 2 and "cannot listen" in r.stderr and "Traceback" not in r.stderr
    finally:
        proc.terminate()
        proc.wait(10)
