"""Provider rate-limit headers: parsing both dialects, and pacing ahead of a 429."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from agentdeck.bus import Bus
from agentdeck.config import LimitsConfig
from agentdeck.limits import ProviderLimiter, parse_go_duration, parse_rate_limit_headers, parse_reset
from agentdeck.bench.virtual_loop import run_virtual

EPOCH = 1_800_000_000.0


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1s", 1.0),
        ("6m0s", 360.0),
        ("12ms", 0.012),
        ("23h47m36.648s", 23 * 3600 + 47 * 60 + 36.648),
        ("0s", 0.0),
        ("0", 0.0),
        ("1.5s", 1.5),
        ("250us", 0.00025),
        ("3µs", 3e-6),
        ("100ns", 1e-7),
        ("2h", 7200.0),
        ("20", 20.0),
    ],
)
def test_go_durations(text: str, seconds: float) -> None:
    assert parse_go_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["", "s", "1x", "1s2", "abc", "1m-2s"])
def test_bad_go_durations_raise(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_go_duration(bad)


def test_parse_reset_all_forms() -> None:
    at = datetime.fromtimestamp(EPOCH + 42, tz=timezone.utc)
    assert parse_reset("6m0s", EPOCH) == 360.0
    assert parse_reset(at.isoformat().replace("+00:00", "Z"), EPOCH) == pytest.approx(42.0)
    assert parse_reset(at.astimezone(timezone(timedelta(hours=2))).isoformat(), EPOCH) == pytest.approx(42.0)
    assert parse_reset("Fri, 15 Jan 2027 08:00:42 GMT", EPOCH) is not None
    assert parse_reset((at - timedelta(seconds=100)).isoformat(), EPOCH) == 0.0  # in the past: now
    assert parse_reset("soon", EPOCH) is None
    assert parse_reset(None, EPOCH) is None
    assert parse_reset("", EPOCH) is None


def test_openai_headers() -> None:
    h = httpx.Headers(
        {
            "X-RateLimit-Limit-Requests": "10000",
            "X-RateLimit-Remaining-Requests": "9998",
            "X-RateLimit-Reset-Requests": "12ms",
            "x-ratelimit-limit-tokens": "2000000",
            "x-ratelimit-remaining-tokens": "1999000",
            "x-ratelimit-reset-tokens": "6m0s",
        }
    )
    info = parse_rate_limit_headers(h, EPOCH)
    assert info == {
        "source": "openai",
        "limit_requests": 10000,
        "remaining_requests": 9998,
        "reset_requests_s": pytest.approx(0.012),
        "limit_tokens": 2000000,
        "remaining_tokens": 1999000,
        "reset_tokens_s": 360.0,
    }


def test_anthropic_headers_from_a_plain_dict_any_case() -> None:
    reset = datetime.fromtimestamp(EPOCH + 7, tz=timezone.utc).isoformat().replace("+00:00", "Z")
    h = {
        "Anthropic-Ratelimit-Requests-Limit": "50",
        "anthropic-ratelimit-requests-remaining": "3",
        "anthropic-ratelimit-requests-reset": reset,
        "anthropic-ratelimit-tokens-limit": "80000",
        "anthropic-ratelimit-tokens-remaining": "12000",
        "anthropic-ratelimit-tokens-reset": reset,
    }
    info = parse_rate_limit_headers(h, EPOCH)
    assert info is not None
    assert info["source"] == "anthropic"
    assert (info["limit_requests"], info["remaining_requests"]) == (50, 3)
    assert info["reset_requests_s"] == pytest.approx(7.0)
    assert (info["limit_tokens"], info["remaining_tokens"]) == (80000, 12000)


def test_no_rate_limit_headers() -> None:
    assert parse_rate_limit_headers({"content-type": "application/json"}) is None
    assert parse_rate_limit_headers(None) is None


def test_observe_publishes_advertised_limits(bus: Bus) -> None:
    lim = ProviderLimiter("openai", LimitsConfig(), bus, wall_clock=lambda: EPOCH)
    lim.observe(200, {"x-ratelimit-limit-requests": "500", "x-ratelimit-remaining-requests": "499", "x-ratelimit-reset-requests": "120ms"})
    adv = lim.snapshot()["advertised"]
    assert adv["limit_requests"] == 500 and adv["remaining_requests"] == 499
    assert adv["reset_requests_s"] == pytest.approx(0.12)
    assert adv["source"] == "openai"


def _run_paced(remaining: int, reset: str, n: int, limit: int = 100) -> list[float]:
    """n attempts at a limiter whose own rate would allow them all at once (1000/s), after a
    response said ``remaining`` of ``limit`` requests are left until ``reset``."""

    async def main() -> list[float]:
        loop = asyncio.get_running_loop()
        lim = ProviderLimiter("p", LimitsConfig(rps=1000, slots=1000, max_rps=1000), Bus(), clock=loop.time)
        lim.observe(
            200,
            {
                "x-ratelimit-limit-requests": str(limit),
                "x-ratelimit-remaining-requests": str(remaining),
                "x-ratelimit-reset-requests": reset,
            },
        )
        times: list[float] = []

        async def attempt() -> None:
            await lim.pace()
            times.append(loop.time())

        await asyncio.gather(*(attempt() for _ in range(n)))
        lim.close()
        return times

    return run_virtual(main())


def test_remaining_zero_holds_attempts_until_the_reset() -> None:
    times = _run_paced(remaining=0, reset="2s", n=5)
    assert min(times) == pytest.approx(2.0)  # nothing went out before the provider's reset


def test_low_remaining_spreads_what_is_left_until_the_reset() -> None:
    times = _run_paced(remaining=4, reset="8s", n=4)
    # 4 left for the next 8 s: one every 2 s instead of all at once (which would 429)
    assert times == pytest.approx([0.0, 2.0, 4.0, 6.0])


def test_plenty_remaining_does_not_slow_anything() -> None:
    times = _run_paced(remaining=90, reset="8s", n=20)
    assert max(times) < 0.05


def test_header_pacing_shows_in_the_snapshot(bus: Bus) -> None:
    lim = ProviderLimiter("p", LimitsConfig(), bus)
    assert lim.snapshot()["header_paced"] is False
    lim.observe(200, {"anthropic-ratelimit-requests-limit": "50", "anthropic-ratelimit-requests-remaining": "0",
                      "anthropic-ratelimit-requests-reset": "30s"})
    assert lim.snapshot()["header_paced"] is True
