"""Helpers for the operations tests: an isolated environment, the real `agentdeck` command, a served gateway.

Every test runs the real program (``python -m agentdeck``) against the in-process mock provider,
with HOME, the XDG dirs and the live-gateway registry (``AGENTDECK_RUNTIME_DIR``) under tmp_path,
so nothing of the developer's machine (or of another test's gateways) is seen.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Sequence

ADMIN_TOKEN = "ops-admin-token-7777"
KEY_DEV = "gw-ops-dev-secret-8888"
PROVIDER_KEY = "sk-ops-PROVIDER-SECRET-9999"
SECRETS = (ADMIN_TOKEN, KEY_DEV, PROVIDER_KEY)
GATEWAY_LINE = re.compile(r"agentdeck gateway listening on (http://\S+)")

_SCRUB = ("AGENTDECK_CONFIG", "AGENTDECK_ADMIN_TOKEN", "AGENTDECK_URL", "AGENTDECK_SESSION", "AGENTDECK_RUNTIME_DIR",
          "ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_BASE_URL", "OPENAI_API_KEY", "OPENAI_BASE_URL",
          "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_RUNTIME_DIR", "PYTEST_ADDOPTS", "PYTEST_CURRENT_TEST", "_ARGCOMPLETE")


def ops_env(tmp_path: Path, **extra: str | None) -> dict[str, str]:
    """os.environ without agentdeck/provider variables; HOME and the registry under tmp_path."""
    home = tmp_path / "home"
    home.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in _SCRUB}
    env.update(HOME=str(home), AGENTDECK_RUNTIME_DIR=str(tmp_path / "run"), PYTHONUNBUFFERED="1", NO_COLOR="1",
               COLUMNS="200")
    for k, v in extra.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = v
    return env


def agentdeck(env: dict[str, str], *args: str, cwd: Path | str | None = None, stdin: str | None = None,
              timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "agentdeck", *args], env=env, cwd=cwd, input=stdin,
                          capture_output=True, text=True, timeout=timeout)


def write_config(path: Path, upstream: str, data_dir: Path, *, gateway: str = "", extra: str = "",
                 admin_token: str = ADMIN_TOKEN) -> Path:
    """A gateway config on the mock provider: one key (dev), both protocols, the admin token."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'''
[gateway]
admin_token = "{admin_token}"
data_dir = "{data_dir}"
store_flush_interval_s = 0.1
shutdown_grace_s = 2
{gateway}

[[keys]]
name = "dev"
key = "{KEY_DEV}"
daily_budget_usd = 20.0

[budget]
hourly_usd = 10.0
daily_usd = 50.0

[providers.anthropic]
protocol = "anthropic"
base_url = "{upstream}"
api_key = "{PROVIDER_KEY}"
models = ["claude-*"]

[providers.openai]
protocol = "openai"
base_url = "{upstream}/v1"
api_key = "{PROVIDER_KEY}"
models = ["gpt-*"]
{extra}
''')
    return path


class Served:
    """`agentdeck serve ARGS` kept running; ``url`` parsed from its announcement, stderr kept in a file."""

    def __init__(self, args: Sequence[str], env: dict[str, str], log_dir: Path, *, cwd: Path | None = None,
                 name: str = "serve", timeout: float = 40.0) -> None:
        log_dir.mkdir(parents=True, exist_ok=True)
        self.stderr_path = log_dir / f"{name}.stderr"
        self._stderr = open(self.stderr_path, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen([sys.executable, "-m", "agentdeck", "serve", "--host", "127.0.0.1", "--port", "0",
                                      *args], env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=self._stderr,
                                     stdin=subprocess.DEVNULL, text=True, start_new_session=True)
        lines: queue.Queue[str | None] = queue.Queue()

        def pump() -> None:
            assert self.proc.stdout is not None
            for line in self.proc.stdout:
                lines.put(line)
            lines.put(None)

        threading.Thread(target=pump, daemon=True).start()
        deadline = time.monotonic() + timeout
        self.url = ""
        while not self.url:
            try:
                line = lines.get(timeout=max(0.05, deadline - time.monotonic()))
            except queue.Empty:
                line = None
            if line is None:
                self.stop()
                raise RuntimeError(f"serve did not announce its URL:\n{self.stderr()}")
            m = GATEWAY_LINE.search(line)
            if m:
                self.url = m.group(1).rstrip("/")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stderr(self) -> str:
        if not self._stderr.closed:
            self._stderr.flush()
        return self.stderr_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        """Signal this process (by pid) and wait for it; returns its exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._stderr.close()
        return int(self.proc.returncode)


def wait_for(pred: Any, timeout: float = 10.0, every: float = 0.05) -> Any:
    """Poll ``pred`` until it returns something truthy (then return it) or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        got = pred()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {pred}")
        time.sleep(every)


def chat(url: str, model: str = "gpt-4o-mini", key: str = KEY_DEV) -> Any:
    """One OpenAI SDK chat call through the gateway (no retries); returns the raw httpx response."""
    import openai

    client = openai.OpenAI(base_url=url + "/v1", api_key=key, max_retries=0)
    try:
        return client.chat.completions.with_raw_response.create(
            model=model, messages=[{"role": "user", "content": "say hi"}], max_tokens=50)
    except openai.APIStatusError as e:
        return e.response


def message(url: str, model: str = "claude-haiku-4-5", key: str = KEY_DEV) -> Any:
    """One Anthropic SDK messages call through the gateway (no retries)."""
    import anthropic

    client = anthropic.Anthropic(base_url=url, api_key=key, max_retries=0)
    return client.messages.create(model=model, max_tokens=50, messages=[{"role": "user", "content": "say hi"}])
