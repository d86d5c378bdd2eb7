"""A real redis-server for the cluster tests: a free loopback port, a temp dir, killed by pid."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import pytest

if TYPE_CHECKING:
    from agentdeck.config import Config


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """One redis-server in the foreground (no persistence); ``stop``/``start`` simulate an outage on the same port."""

    def __init__(self, workdir: Path) -> None:
        exe = shutil.which("redis-server")
        if exe is None:
            pytest.skip("redis-server is not installed (.ci/run installs it with apt)")
        self.exe = exe
        self.dir = workdir
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> "RedisServer":
        self.proc = subprocess.Popen(
            [self.exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.dir)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        end = time.monotonic() + 10
        while time.monotonic() < end:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as c:
                    c.sendall(b"PING\r\n")
                    if c.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                time.sleep(0.02)
        raise AssertionError("redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
        self.proc = None


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    d = tmp_path / "redis"
    d.mkdir()
    server = RedisServer(d).start()
    yield server
    server.stop()


def cluster_toml(url: str, name: str = "t", **extra: object) -> str:
    """The [cluster] section of a serve config for ``url``."""
    lines = ["[cluster]", 'backend = "redis"', f'url = "{url}"', f'name = "{name}"']
    for k, v in extra.items():
        lines.append(f"{k} = {v!r}" if not isinstance(v, str) else f'{k} = "{v}"')
    return "\n".join(lines) + "\n"


def make_cluster_config(tmp_path: Path, url: str, name: str = "t", **sections: object) -> "Config":
    """A parsed config with ``[cluster] backend = "redis"`` at ``url``; other sections by keyword, cluster keys too."""
    from agentdeck.config import parse_config

    cluster_keys = {k: sections.pop(k) for k in list(sections) if k in ("lease_s", "on_redis_down", "op_timeout_s",
                                                                          "connect_timeout_s")}
    data: dict[str, object] = {"gateway": {"data_dir": str(tmp_path / "data"), "admin_token": "admintok"},
                               "cluster": {"backend": "redis", "url": url, "name": name, **cluster_keys}}
    data.update(sections)
    return parse_config(data, "<test>", environ={})


def write_cluster_serve_config(path: Path, data_dir: Path, upstream: str, redis_url: str, *, hourly_usd: float = 1000.0,
                               cluster_extra: str = "", extra: str = "", provider_extra: str = "") -> Path:
    """An `agentdeck serve` config: the mock as an OpenAI provider with a house price, one key, the cluster on ``redis_url``.

    ``provider_extra`` goes inside ``[providers.openai]`` (a ``fallback = ...``); ``extra`` after the prices."""
    from deck_support import ADMIN_TOKEN, GATEWAY_KEY

    path.write_text(f"""
[gateway]
port = 0
admin_token = "{ADMIN_TOKEN}"
data_dir = "{data_dir}"
store_flush_interval_s = 0.2
shutdown_grace_s = 5
[[keys]]
name = "dev"
key = "{GATEWAY_KEY}"
[budget]
hourly_usd = {hourly_usd}
daily_usd = 1000.0
auto_stop_when_daily_spent = false
[anomaly]
enabled = false
[providers.openai]
protocol = "openai"
base_url = "{upstream}"
api_key = "sk-provider-x"
models = ["house-mini"]
{provider_extra}
[prices."house-mini"]
input = 10.0
output = 20.0
max_output_tokens = 4096
{extra}
{cluster_toml(redis_url)}{cluster_extra}
""")
    return path


def stored_rows(data_dir: Path) -> list[tuple[int, float]]:
    """(status, cost_usd) of every request row a gateway stored in its own SQLite file."""
    import sqlite3

    from agentdeck.store import db_path

    conn = sqlite3.connect(db_path(data_dir))
    try:
        return [(int(s), float(c or 0.0)) for s, c in conn.execute("SELECT status, cost_usd FROM requests")]
    finally:
        conn.close()


def stop_serve(proc: "subprocess.Popen[str]") -> str:
    """SIGINT (uvicorn drains, the store flushes), then the stderr it wrote."""
    proc.send_signal(signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    return err or ""
