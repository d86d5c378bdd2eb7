"""Plain helpers for the contract suite: run the CLI as a subprocess, write TOML, serve a gateway.

Why subprocesses everywhere: the contract is what an outside check sees (exit codes, stdout,
stderr, HTTP on a real port), so nothing here imports the gateway or calls the CLI in-process.
Every process gets an isolated environment (its own HOME, no inherited AGENTDECK_*/provider
variables) so no test can read or write the real user's config or data directory.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

PROVIDER_KEY_ANTHROPIC = "sk-ant-contract-PROVIDER-SECRET-1111"
PROVIDER_KEY_OPENAI = "sk-contract-PROVIDER-SECRET-2222"
ADMIN_TOKEN = "contract-admin-token-3333"
KEY_DEV = "gw-contract-dev-4444"
KEY_OTHER = "gw-contract-other-5555"
KEY_POOR = "gw-contract-poor-6666"
TIERS = ("fast", "balanced", "smart")
GATEWAY_LINE = re.compile(r"agentdeck gateway listening on (http://\S+)")
MOCK_LINE = re.compile(r"mock provider listening on (http://\S+)")

# Variables that would leak the developer's setup into a test process.
_SCRUB = ("AGENTDECK_CONFIG", "AGENTDECK_ADMIN_TOKEN", "AGENTDECK_KEY", "AGENTDECK_URL", "AGENTDECK_SESSION",
          "AGENTDECK_SESSION_KEY", "ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_BASE_URL",
          "OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_API_BASE", "XDG_CONFIG_HOME", "XDG_DATA_HOME",
          "PYTEST_ADDOPTS", "PYTEST_CURRENT_TEST")


def isolated_env(home: Path, **extra: str | None) -> dict[str, str]:
    """os.environ without agentdeck/provider variables, HOME moved to ``home``; ``extra`` set (None = unset)."""
    home.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in _SCRUB}
    env["HOME"] = str(home)
    env["PYTHONUNBUFFERED"] = "1"
    env["NO_COLOR"] = "1"
    env["COLUMNS"] = "200"
    for k, v in extra.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = v
    return env


def cli(args: Sequence[str], env: dict[str, str], cwd: Path | str | None = None, timeout: float = 60.0,
        stdin: str | None = None, module: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``python -m agentdeck ARGS`` (or the ``agentdeck`` script with module=False) to completion."""
    head = [sys.executable, "-m", "agentdeck"] if module else [str(Path(sys.executable).parent / "agentdeck")]
    return subprocess.run([*head, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          input=stdin if stdin is not None else "", check=False)


def cli_many(calls: Iterable[tuple[Sequence[str], dict[str, Any]]]) -> list[subprocess.CompletedProcess[str]]:
    """Run several CLI invocations at once (start-up dominates their cost; the machine has 2 cores)."""
    calls = list(calls)
    with ThreadPoolExecutor(max_workers=4) as ex:
        futs = [ex.submit(cli, a, **kw) for a, kw in calls]
        return [f.result() for f in futs]


def describe(p: subprocess.CompletedProcess[str]) -> str:
    return f"argv={p.args!r}\nexit={p.returncode}\n--- stdout ---\n{p.stdout[-3000:]}\n--- stderr ---\n{p.stderr[-3000:]}"


def assert_one_clear_error(p: subprocess.CompletedProcess[str], *must_contain: str) -> str:
    """The contract: one clear line on stderr, a non-zero exit, never a traceback. Returns the line."""
    assert p.returncode != 0, describe(p)
    assert "Traceback" not in p.stderr and "Traceback" not in p.stdout, describe(p)
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, f"expected exactly one line on stderr\n{describe(p)}"
    for needle in must_contain:
        assert needle.lower() in lines[0].lower(), f"{needle!r} not in the error line\n{describe(p)}"
    return lines[0]


# -- TOML ---------------------------------------------------------------------------------
_BARE = re.compile(r"^[A-Za-z0-9_-]+$")


def _key(k: str) -> str:
    return k if _BARE.match(k) else json.dumps(k)


def _scalar(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(_scalar(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_scalar(x)}" for k, x in v.items()) + " }"
    raise TypeError(f"cannot write {type(v).__name__} as TOML")


def _is_table_list(v: Any) -> bool:
    return isinstance(v, list) and bool(v) and all(isinstance(x, dict) for x in v)


def to_toml(doc: dict[str, Any], prefix: str = "") -> str:
    """A small TOML writer: scalars first, then sub-tables and arrays of tables (None values are left out)."""
    out: list[str] = []
    for k, v in doc.items():
        if v is None or isinstance(v, dict) or _is_table_list(v):
            continue
        out.append(f"{_key(k)} = {_scalar(v)}")
    for k, v in doc.items():
        name = f"{prefix}.{_key(k)}" if prefix else _key(k)
        if isinstance(v, dict):
            out.append(f"\n[{name}]")
            out.append(to_toml(v, name))
        elif _is_table_list(v):
            for item in v:
                out.append(f"\n[[{name}]]")
                out.append(to_toml(item, name))
    return "\n".join(x for x in out if x != "")


def write_config(path: Path, doc: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(to_toml(doc) + "\n")
    return path


def gateway_doc(data_dir: Path, upstream: str, **overrides: Any) -> dict[str, Any]:
    """The suite's gateway config: both protocols on the mock, three caller keys, tight providers for 429."""
    retry = {"backoff_base_s": 0.01, "backoff_max_s": 0.05}
    tight = {"rps": 100, "slots": 1, "min_slots": 1, "max_slots": 1, "increase": 0, "max_queue_wait_s": 0.3}
    doc: dict[str, Any] = {
        "gateway": {"host": "127.0.0.1", "port": 0, "admin_token": ADMIN_TOKEN, "data_dir": str(data_dir),
                    "store_flush_interval_s": 0.2, "shutdown_grace_s": 2, "max_body_bytes": 65536},
        "keys": [{"name": "dev", "key": KEY_DEV}, {"name": "other", "key": KEY_OTHER},
                 {"name": "poor", "key": KEY_POOR, "daily_budget_usd": 0.000001}],
        "budget": {"hourly_usd": 1000.0, "daily_usd": 5000.0},
        "providers": {
            "anthropic": {"protocol": "anthropic", "base_url": upstream, "api_key": PROVIDER_KEY_ANTHROPIC,
                          "models": ["claude-haiku-4-5", "claude-sonnet-4-5", "claude-opus-4-5"], "retry": retry},
            "openai": {"protocol": "openai", "base_url": upstream, "api_key": PROVIDER_KEY_OPENAI,
                       "models": ["gpt-4o-mini", "gpt-4o", "gpt-4.1"], "retry": retry},
            "tight_anthropic": {"protocol": "anthropic", "base_url": upstream, "api_key": PROVIDER_KEY_ANTHROPIC,
                                "models": ["claude-opus-4-1"], "retry": retry, "limits": dict(tight)},
            "tight_openai": {"protocol": "openai", "base_url": upstream, "api_key": PROVIDER_KEY_OPENAI,
                             "models": ["gpt-4.1-nano"], "retry": retry, "limits": dict(tight)},
        },
    }
    for name, value in overrides.items():
        if isinstance(value, dict) and isinstance(doc.get(name), dict):
            doc[name] = {**doc[name], **value}
        else:
            doc[name] = value
    return doc


# -- a served gateway (or mock) as a subprocess --------------------------------------------
class Served:
    """``python -m agentdeck ARGS`` kept running; ``url`` is parsed from its announcement line."""

    def __init__(self, args: Sequence[str], env: dict[str, str], pattern: re.Pattern[str], log_dir: Path,
                 name: str = "served", timeout: float = 40.0) -> None:
        self.args = list(args)
        log_dir.mkdir(parents=True, exist_ok=True)
        self.stderr_path = log_dir / f"{name}.stderr"
        self._stderr = open(self.stderr_path, "w")  # noqa: SIM115 (lives as long as the process; closed in stop())
        self.stdout_lines: list[str] = []
        self.proc = subprocess.Popen([sys.executable, "-m", "agentdeck", *args], env=env, stdout=subprocess.PIPE,
                                     stderr=self._stderr, stdin=subprocess.DEVNULL, text=True, start_new_session=True)
        lines: queue.Queue[str | None] = queue.Queue()

        def pump() -> None:
            assert self.proc.stdout is not None
            for line in self.proc.stdout:
                self.stdout_lines.append(line)
                lines.put(line)
            lines.put(None)

        threading.Thread(target=pump, daemon=True, name=f"pump-{name}").start()
        deadline = time.monotonic() + timeout
        self.url = ""
        while not self.url:
            try:
                line = lines.get(timeout=max(0.05, deadline - time.monotonic()))
            except queue.Empty:
                line = None
            if line is None:
                self.stop()
                raise RuntimeError(f"{args!r} did not announce its URL:\n{''.join(self.stdout_lines)}\n{self.stderr()}")
            m = pattern.search(line)
            if m:
                self.url = m.group(1).rstrip("/")

    def stderr(self) -> str:
        if not self._stderr.closed:
            self._stderr.flush()
        return self.stderr_path.read_text(errors="replace")

    def output(self) -> str:
        return "".join(self.stdout_lines) + self.stderr()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        """Signal the process (only this one, by pid) and wait for it to exit; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._stderr.close()
        return int(self.proc.returncode)


def serve_gateway(config: Path, env: dict[str, str], log_dir: Path, name: str = "gateway") -> Served:
    return Served(["serve", "--config", str(config), "--host", "127.0.0.1", "--port", "0"], env, GATEWAY_LINE, log_dir, name)


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def admin() -> dict[str, str]:
    return auth(ADMIN_TOKEN)


def chat_body(model: str = "fast", text: str = "say hello", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": text}], **extra}


def messages_body(model: str = "fast", text: str = "say hello", max_tokens: int = 200, **extra: Any) -> dict[str, Any]:
    return {"model": model, "max_tokens": max_tokens, "messages": [{"role": "user", "content": text}], **extra}
