"""The circuit breaker and header-based pacing shared by real `agentdeck serve` processes.

A breaker one process opens is open on all (the others go to the fallback at once instead
of each failing its own threshold first), and a provider's "no requests left until the
reset" seen by one process holds back the others.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import openai
from cluster_support import RedisServer, stop_serve, write_cluster_serve_config
from deck_support import ADMIN_TOKEN, GATEWAY_KEY, serve_process

from agentdeck.sim import MockServer


def _config(path: Path, data_dir: Path, primary: str, redis_url: str, *, backup: str | None = None,
            limits: str = "") -> Path:
    """Every tier on the house model, no retries, a breaker that opens after 3 failures; ``backup`` as the fallback."""
    backup_section = f"""
[providers.backup]
protocol = "openai"
base_url = "{backup}"
api_key = "sk-backup-x"
models = ["house-mini"]
""" if backup else ""
    return write_cluster_serve_config(path, data_dir, primary, redis_url,
                                      provider_extra='fallback = "backup"' if backup else "", extra=f"""
[routing.tiers.fast]
openai = "house-mini"
[routing.tiers.balanced]
openai = "house-mini"
[routing.tiers.smart]
openai = "house-mini"
[providers.openai.retry]
max_retries = 0
[providers.openai.breaker]
failure_threshold = 3
open_for_s = 30
{limits}
{backup_section}""")


def _ask(client: openai.OpenAI) -> str:
    """'200 <provider>' for an answer, or the error status."""
    try:
        r = client.chat.completions.with_raw_response.create(
            model="house-mini", max_tokens=8, messages=[{"role": "user", "content": "hi"}])
        r.parse()
        return f"200 {r.headers.get('x-agentdeck-provider', '')}".strip()
    except openai.APIStatusError as e:
        return str(e.status_code)


def _start(tmp_path: Path, n: int, primary: str, redis_url: str, **kw: Any) -> tuple[list[Any], list[str]]:
    procs, urls = [], []
    for i in range(n):
        p, url = serve_process(_config(tmp_path / f"gw{i}.toml", tmp_path / f"gw{i}", primary, redis_url, **kw))
        procs.append(p)
        urls.append(url)
    return procs, urls


def test_a_breaker_opened_by_one_process_is_open_on_all(tmp_path: Path, redis_server: RedisServer,
                                                        mock: MockServer) -> None:
    with MockServer() as dead:
        dead.update(rate_5xx=1.0)
        procs, urls = _start(tmp_path, 3, dead.url, redis_server.url, backup=mock.url)
        clients = [openai.OpenAI(base_url=u + "/v1", api_key=GATEWAY_KEY, max_retries=0, timeout=20) for u in urls]
        try:
            # Process A sees the provider fail three times in a row: its breaker opens.
            assert [_ask(clients[0]) for _ in range(3)] == ["500"] * 3
            # B and C have not seen one failure, yet send their first calls straight to the fallback.
            b, c = _ask(clients[1]), _ask(clients[2])
            seen_by_dead = dead.stats()["requests"]
            st = httpx.get(urls[1] + "/admin/status", headers={"authorization": f"Bearer {ADMIN_TOKEN}"}).json()
        finally:
            for cl in clients:
                cl.close()
            errs = [stop_serve(p) for p in procs]
    assert b.startswith("200") and c.startswith("200"), (b, c)
    assert seen_by_dead == 3, "processes that never saw a failure still called the provider A found down"
    assert mock.stats()["requests"] == 2  # both went to the backup
    assert st["providers"]["openai"]["breaker"] in ("open", "half_open")
    assert "Traceback" not in "".join(errs)
    # The alert is raised once, by the process whose calls failed; the others follow silently.
    assert "circuit breaker open" in errs[0]
    assert "circuit breaker open" not in errs[1] + errs[2]


def test_rate_limit_headers_seen_by_one_process_hold_back_the_others(tmp_path: Path, redis_server: RedisServer,
                                                                     mock: MockServer) -> None:
    # AIMD cannot move (min = max) and the gateway does not retry: only the headers can keep calls from a 429.
    limits = """
[providers.openai.limits]
rps = 1000
min_rps = 1000
max_rps = 1000
slots = 100
min_slots = 100
max_slots = 100
"""
    mock.update(rps_limit=10.0)
    procs, urls = _start(tmp_path, 3, mock.url, redis_server.url, limits=limits)
    clients = [openai.OpenAI(base_url=u + "/v1", api_key=GATEWAY_KEY, max_retries=0, timeout=20) for u in urls]
    try:
        mock.reset()
        # A spends the provider's window of 10 requests: its last answer says none left until the reset.
        first = [_ask(clients[0]) for _ in range(10)]
        # B and C have had no answer from the provider; they wait for its reset instead of drawing a 429.
        later = [_ask(clients[1]), _ask(clients[2])]
        counts = {int(k): v for k, v in mock.stats()["status_counts"].items()}
    finally:
        for cl in clients:
            cl.close()
        errs = [stop_serve(p) for p in procs]
    assert "Traceback" not in "".join(errs)
    assert all(s.startswith("200") for s in first), first
    assert all(s.startswith("200") for s in later), later
    assert counts.get(429, 0) == 0, counts
