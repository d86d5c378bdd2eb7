"""Cost protection through the real gateway: the emergency stop, budgets under concurrency, hang-ups."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import anthropic
import httpx
import openai
import pytest

from deck_support import ADMIN_TOKEN, GATEWAY_KEY

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def status(gw: Any) -> dict[str, Any]:
    return httpx.get(gw.url + "/admin/status", headers=ADMIN).json()


def admin_post(gw: Any, path: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(gw.url + path, json=body, headers=ADMIN, timeout=10)


def test_stop_refuses_at_once_ends_streams_survives_restart_and_resumes(make_gateway: Any, mock: Any, tmp_path: Any) -> None:
    gw = make_gateway()
    mock.update(token_ms=40.0, output_tokens=200)  # a stream of about 8 s
    o = openai.OpenAI(base_url=gw.url + "/v1", api_key=GATEWAY_KEY, max_retries=2)
    a = anthropic.Anthropic(base_url=gw.url, api_key=GATEWAY_KEY, max_retries=2)
    ended: dict[str, Any] = {}

    def openai_stream() -> None:
        try:
            for _ in o.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "long"}], stream=True):
                pass
            ended["openai"] = ("finished", time.monotonic())
        except openai.APIError as e:
            ended["openai"] = (e, time.monotonic())

    def anthropic_stream() -> None:
        try:
            with a.messages.stream(model="claude-sonnet-4-5", max_tokens=1000, messages=[{"role": "user", "content": "long"}]) as s:
                for _ in s.text_stream:
                    pass
            ended["anthropic"] = ("finished", time.monotonic())
        except anthropic.APIError as e:
            ended["anthropic"] = (e, time.monotonic())

    threads = [threading.Thread(target=openai_stream), threading.Thread(target=anthropic_stream)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 5
    while status(gw)["in_flight"] < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.3)  # some tokens have flowed

    client = httpx.Client(base_url=gw.url, timeout=10)  # connections already open, as an agent's would be
    client.get("/healthz")
    t_stop = time.monotonic()
    r = client.post("/admin/stop", json={"reason": "runaway agent loop"}, headers=ADMIN)
    assert r.status_code == 200
    refused = client.post("/v1/chat/completions", headers={"Authorization": f"Bearer {GATEWAY_KEY}"},
                          json={"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}]})
    took = time.monotonic() - t_stop
    assert took < 0.1, f"stop took {took * 1000:.0f} ms to refuse a new call"
    assert refused.status_code == 403 and refused.headers["x-should-retry"] == "false"
    err = refused.json()["error"]
    assert err["code"] == "agentdeck_stopped" and "runaway agent loop" in err["message"] and "resume" in err["message"]

    for t in threads:
        t.join(5)
    for name in ("openai", "anthropic"):
        outcome, when = ended[name]
        assert outcome != "finished", f"{name} stream was not ended by the stop"
        assert "runaway agent loop" in str(outcome)
        assert when - t_stop < 1.0, f"{name} stream took {when - t_stop:.2f}s to end"

    # The SDK does not retry a stop (x-should-retry: false): one refusal counted, not three.
    before = _refused(gw)
    with pytest.raises(anthropic.PermissionDeniedError) as pe:
        a.messages.create(model="claude-haiku-4-5", max_tokens=20, messages=[{"role": "user", "content": "x"}])
    assert pe.value.body["error"]["type"] == "permission_error"
    assert _refused(gw) == before + 1

    # The cut streams were priced for what was used.
    time.sleep(0.5)
    rows = httpx.get(gw.url + "/admin/requests?limit=10", headers=ADMIN).json()["requests"]
    cut = [r for r in rows if r["stream"]]
    assert len(cut) == 2 and all(r["cost_usd"] > 0 and r["output_tokens"] > 0 for r in cut)

    # The stop survives a restart; resume is explicit and recorded.
    gw.stop()
    gw2 = make_gateway()
    st = status(gw2)
    assert st["stopped"] is True and st["stop_reason"] == "runaway agent loop"
    assert admin_post(gw2, "/admin/resume", {}).status_code == 200
    assert status(gw2)["stopped"] is False
    ok = openai.OpenAI(base_url=gw2.url + "/v1", api_key=GATEWAY_KEY, max_retries=0).chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "back"}])
    assert ok.choices[0].message.content
    hist = httpx.get(gw2.url + "/admin/history", headers=ADMIN).json()["stops"]
    assert [h["stopped"] for h in hist[:2]] == [0, 1] and hist[1]["actor"] == "api" and hist[1]["reason"] == "runaway agent loop"


def _refused(gw: Any) -> float:
    for line in httpx.get(gw.url + "/metrics").text.splitlines():
        if line.startswith('agentdeck_refused_total{reason="agentdeck_stopped"}'):
            return float(line.split()[-1])
    return 0.0


def test_stop_one_key_leaves_others_working(make_gateway: Any) -> None:
    gw = make_gateway(keys=[{"name": "dev", "key": GATEWAY_KEY}, {"name": "ci", "key": "gw-ci-SECRET-eeeeeeee"}])
    assert admin_post(gw, "/admin/stop", {"reason": "ci is looping", "key": "ci"}).status_code == 200
    ci = openai.OpenAI(base_url=gw.url + "/v1", api_key="gw-ci-SECRET-eeeeeeee", max_retries=0)
    dev = openai.OpenAI(base_url=gw.url + "/v1", api_key=GATEWAY_KEY, max_retries=0)
    with pytest.raises(openai.PermissionDeniedError) as e:
        ci.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}])
    assert "ci is looping" in e.value.message
    time.sleep(0.4)
    refused = httpx.get(gw.url + "/admin/requests?limit=5", headers=ADMIN).json()["requests"][0]
    assert refused["key"] == "ci" and refused["status"] == 403 and refused["error"] == "agentdeck_stopped"
    assert refused["cost_usd"] == 0 and refused["model"] == "gpt-4o-mini"
    assert dev.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}]).choices
    st = status(gw)
    assert st["stopped"] is False and st["stopped_keys"] == {"ci": "ci is looping"}
    assert admin_post(gw, "/admin/resume", {"key": "ci"}).status_code == 200
    assert ci.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}]).choices


def test_budget_never_overshot_under_300_concurrent_calls(make_gateway: Any, mock: Any) -> None:
    gw = make_gateway(budget={"hourly_usd": 0.02, "daily_usd": 100.0})
    mock.update(latency_ms=30.0, token_ms=2.0, output_tokens=40)
    h = {"Authorization": f"Bearer {GATEWAY_KEY}", "x-api-key": GATEWAY_KEY, "anthropic-version": "2023-06-01"}

    async def one(i: int, client: httpx.AsyncClient) -> tuple[int, str]:
        body = {"model": "claude-haiku-4-5", "max_tokens": 60, "messages": [{"role": "user", "content": f"task {i}"}],
                "stream": i % 2 == 0}
        r = await client.post(gw.url + "/v1/messages", json=body, headers=h)
        return r.status_code, r.text

    async def main() -> list[tuple[int, str]]:
        async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=300)) as c:
            return await asyncio.gather(*(one(i, c) for i in range(300)))

    results = asyncio.run(main())
    codes = [c for c, _ in results]
    assert set(codes) <= {200, 403}
    assert codes.count(200) > 10 and codes.count(403) > 10
    assert all('"code":"budget_exceeded"' in t for c, t in results if c == 403)
    time.sleep(0.5)
    st = status(gw)
    rows = httpx.get(gw.url + "/admin/requests?limit=1000", headers=ADMIN).json()["requests"]
    served = [r for r in rows if r["status"] == 200]
    assert len(served) == codes.count(200)
    assert all(r["cost_usd"] > 0 for r in served), "a served call was not priced"
    assert sum(r["stream"] for r in served) > 0
    total = sum(r["cost_usd"] for r in rows)
    assert total <= 0.02 + 1e-9
    assert st["spend"]["hour_usd"] == pytest.approx(total, abs=1e-6)
    assert st["spend"]["reserved_usd"] == 0 and st["spend"]["open_reservations"] == 0


def test_clients_hanging_up_mid_stream_leave_no_reservation(make_gateway: Any, mock: Any) -> None:
    gw = make_gateway()
    mock.update(token_ms=30.0, output_tokens=300)
    h = {"Authorization": f"Bearer {GATEWAY_KEY}"}

    async def hang_up(i: int) -> None:
        async with httpx.AsyncClient(timeout=10) as c:
            async with c.stream("POST", gw.url + "/v1/chat/completions", headers=h,
                                json={"model": "gpt-4o", "stream": True, "messages": [{"role": "user", "content": "x"}]}) as r:
                async for _ in r.aiter_bytes():
                    break  # first bytes arrived: hang up

    async def main() -> None:
        await asyncio.gather(*(hang_up(i) for i in range(10)))

    asyncio.run(main())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        st = status(gw)
        if st["spend"]["open_reservations"] == 0 and st["in_flight"] == 0 and st["providers"]["openai"]["in_flight"] == 0:
            break
        time.sleep(0.05)
    assert st["spend"]["open_reservations"] == 0 and st["spend"]["reserved_usd"] == 0
    assert st["providers"]["openai"]["in_flight"] == 0, "slots must come back after client disconnects"
    time.sleep(0.4)
    rows = httpx.get(gw.url + "/admin/requests?limit=20", headers=ADMIN).json()["requests"]
    assert len(rows) == 10 and all(r["status"] == 499 and r["cost_usd"] > 0 for r in rows)


def test_anthropic_budget_refusal_names_the_code(make_gateway: Any) -> None:
    gw = make_gateway(budget={"hourly_usd": 0.000001, "daily_usd": 100.0})
    a = anthropic.Anthropic(base_url=gw.url, api_key=GATEWAY_KEY, max_retries=2)
    with pytest.raises(anthropic.PermissionDeniedError) as e:
        a.messages.create(model="claude-opus-4-5", max_tokens=1000, messages=[{"role": "user", "content": "x"}])
    err = e.value.body["error"]
    assert err["type"] == "permission_error" and err["code"] == "budget_exceeded" and "hourly budget" in err["message"]
    assert e.value.response.headers["x-should-retry"] == "false"
