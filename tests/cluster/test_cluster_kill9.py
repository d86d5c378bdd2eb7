"""`kill -9` one serve process of a cluster mid-call: its reservations come back after the lease."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path
from typing import Any

import openai
from cluster_support import RedisServer, stop_serve, write_cluster_serve_config
from deck_support import GATEWAY_KEY, serve_process

from agentdeck.budget.ledger import Ledger
from agentdeck.bus import Bus
from agentdeck.config import parse_config
from agentdeck.state.redis_link import RedisLink
from agentdeck.state.redis_spend import RedisSpend


async def _call(client: openai.AsyncOpenAI, text: str = "hi") -> str:
    try:
        await client.chat.completions.create(model="house-mini", max_tokens=50, messages=[{"role": "user", "content": text}])
        return "ok"
    except openai.APIStatusError as e:
        body: Any = e.body
        return str((body or {}).get("code"))
    except openai.APIConnectionError:
        return "connection"


async def test_the_holds_of_a_killed_process_return_after_the_lease(tmp_path: Path, redis_server: RedisServer,
                                                                     mock: Any) -> None:
    cfg = parse_config({"cluster": {"backend": "redis", "url": redis_server.url, "name": "t"}}, "<test>", environ={})
    watcher = RedisSpend(RedisLink(cfg.cluster, Bus()), Ledger(cfg, Bus()))
    procs, clients = [], []
    try:
        for i in range(3):
            conf = write_cluster_serve_config(tmp_path / f"gw{i}.toml", tmp_path / f"gw{i}", mock.url, redis_server.url,
                                              hourly_usd=0.005, cluster_extra="lease_s = 1.0\n")
            p, url = serve_process(conf)
            procs.append(p)
            clients.append(openai.AsyncOpenAI(base_url=url + "/v1", api_key=GATEWAY_KEY, max_retries=0, timeout=30))
        a, b, c = clients
        hung = [asyncio.create_task(_call(a, "hi [mock:slow=60000]")) for _ in range(4)]
        for _ in range(200):
            if (await watcher.totals())["open_reservations"] == 4:
                break
            await asyncio.sleep(0.02)
        else:
            raise AssertionError("the four calls on A never held their reservations")
        await asyncio.sleep(1.5)  # longer than the lease: A renews its live holds
        assert await _call(b) == "budget_exceeded"
        os.kill(procs[0].pid, signal.SIGKILL)
        t0 = time.perf_counter()
        for _ in range(200):
            if await _call(b) == "ok":
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("A's holds never expired")
        back_after = time.perf_counter() - t0
        assert await _call(c) == "ok"  # the others carry on
        assert set(await asyncio.gather(*hung)) == {"connection"}
        for _ in range(100):  # the last of A's holds may have been renewed just before the kill
            totals = await watcher.totals()
            if totals["open_reservations"] == 0:
                break
            await asyncio.sleep(0.05)
        assert totals["open_reservations"] == 0 and totals["reserved_usd"] == 0
        print(f"\nA's 4 holds came back {back_after * 1000:.0f} ms after kill -9 (lease 1.0 s)")
    finally:
        for x in clients:
            await x.close()
        await watcher.link.close()
        errs = [stop_serve(p) for p in procs[1:]]
        procs[0].wait(5)
    assert "Traceback" not in "".join(errs)
