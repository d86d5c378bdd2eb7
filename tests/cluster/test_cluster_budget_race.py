"""The budget race across real `agentdeck serve` processes sharing one Redis (issue 15's first test)."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import openai
import pytest
from cluster_support import RedisServer, stop_serve, stored_rows, write_cluster_serve_config
from deck_support import GATEWAY_KEY, serve_process

from agentdeck.config import parse_config
from agentdeck.state.redis_link import RedisLink
from agentdeck.state.redis_spend import RedisSpend
from agentdeck.budget.ledger import Ledger
from agentdeck.bus import Bus


async def _one(client: openai.AsyncOpenAI, stream: bool) -> str:
    try:
        if stream:
            s = await client.chat.completions.create(model="house-mini", max_tokens=50, stream=True,
                                                     messages=[{"role": "user", "content": "hi"}])
            async for _ in s:
                pass
        else:
            await client.chat.completions.create(model="house-mini", max_tokens=50,
                                                 messages=[{"role": "user", "content": "hi"}])
        return "ok"
    except openai.PermissionDeniedError as e:
        body: Any = e.body
        return str((body or {}).get("code") or body)


async def test_300_calls_over_three_processes_never_overshoot_and_ledger_equals_rows(
        tmp_path: Path, redis_server: RedisServer, mock: Any) -> None:
    mock.update(latency_ms=30.0)
    procs, urls, dirs = [], [], []
    try:
        for i in range(3):
            d = tmp_path / f"gw{i}"
            cfg = write_cluster_serve_config(tmp_path / f"gw{i}.toml", d, mock.url, redis_server.url, hourly_usd=0.02)
            p, url = serve_process(cfg)
            procs.append(p)
            urls.append(url)
            dirs.append(d)
        clients = [openai.AsyncOpenAI(base_url=u + "/v1", api_key=GATEWAY_KEY, max_retries=0, timeout=30) for u in urls]
        rnd = random.Random(15)
        order = [(clients[i % 3], i % 2 == 0) for i in range(300)]
        rnd.shuffle(order)
        outcomes = await asyncio.gather(*(_one(c, s) for c, s in order))
        for c in clients:
            await c.close()
    finally:
        errs = [stop_serve(p) for p in procs]
    assert "Traceback" not in "".join(errs)
    assert set(outcomes) <= {"ok", "budget_exceeded"}, sorted(set(outcomes))
    served = outcomes.count("ok")
    assert 10 <= served < 300  # the budget both admitted calls and refused the rest

    cfg = parse_config({"cluster": {"backend": "redis", "url": redis_server.url, "name": "t"}}, "<test>", environ={})
    spend = RedisSpend(RedisLink(cfg.cluster, Bus()), Ledger(cfg, Bus()))
    totals = await spend.totals()
    await spend.link.close()
    rows = [r for d in dirs for r in stored_rows(d)]
    assert sum(1 for s, _ in rows if s == 200) == served
    assert totals["hour_usd"] <= 0.02 + 1e-9
    assert totals["open_reservations"] == 0 and totals["reserved_usd"] == 0
    assert totals["hour_usd"] == pytest.approx(sum(c for _, c in rows), abs=1e-9)
    print(f"\nserved {served} of 300, cluster spend ${totals['hour_usd']:.6f} of $0.02, "
          f"rows {len(rows)} summing ${sum(c for _, c in rows):.6f}")
