"""Retry whitelist and backoff that honours the provider's hints."""

from __future__ import annotations

import random
from email.utils import format_datetime
from datetime import datetime, timezone

import httpx
import pytest

from agentdeck.config import RetryConfig
from agentdeck.limits import NEVER_RETRY_STATUSES, RetryPolicy

NOW = 1_800_000_000.0


def policy(**kw: float) -> RetryPolicy:
    return RetryPolicy(RetryConfig(**kw), rng=random.Random(3), wall_clock=lambda: NOW)


@pytest.mark.parametrize("status", [429, 529, 500, 502, 503, 504])
def test_whitelisted_statuses_retry(status: int) -> None:
    assert policy().retryable_status(status)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 408, 409, 413, 422, 501, 200])
def test_everything_else_is_final(status: int) -> None:
    p = policy()
    assert not p.retryable_status(status)
    assert p.next_delay(0, status=status) is None


def test_never_retry_set_is_disjoint_from_the_whitelist() -> None:
    assert NEVER_RETRY_STATUSES == {400, 401, 403, 404, 413, 422}
    assert not any(policy().retryable_status(s) for s in NEVER_RETRY_STATUSES)


def test_connect_errors_and_timeouts_retry_other_exceptions_do_not() -> None:
    p = policy()
    req = httpx.Request("POST", "http://127.0.0.1:1/v1/messages")
    assert p.retryable_error(httpx.ConnectError("refused", request=req))
    assert p.retryable_error(httpx.ReadTimeout("slow", request=req))
    assert p.retryable_error(ConnectionResetError())
    assert p.retryable_error(TimeoutError())
    assert not p.retryable_error(ValueError("bad json"))
    assert p.next_delay(0, exc=httpx.ConnectTimeout("t", request=req)) is not None
    assert p.next_delay(0, exc=KeyError("x")) is None


def test_retry_after_ms_wins() -> None:
    assert policy().delay(0, {"retry-after-ms": "1500", "retry-after": "9"}) == 1.5


def test_retry_after_seconds() -> None:
    assert policy().delay(3, {"Retry-After": "7"}) == 7.0


def test_retry_after_http_date() -> None:
    when = format_datetime(datetime.fromtimestamp(NOW + 12, tz=timezone.utc), usegmt=True)
    assert policy().delay(0, {"retry-after": when}) == pytest.approx(12.0)


@pytest.mark.parametrize("hint", [{"retry-after": "61"}, {"retry-after-ms": "90000"}, {"retry-after": "0"},
                                  {"retry-after": "-3"}, {"retry-after": "tomorrow"}])
def test_hints_outside_0_to_60_s_fall_back_to_backoff(hint: dict[str, str]) -> None:
    d = policy(backoff_base_s=0.5, backoff_max_s=8).delay(1, hint)
    assert 0.75 <= d <= 1.0  # 0.5 * 2**1 with jitter in [0.75, 1]


def test_exponential_backoff_is_capped_and_jittered() -> None:
    p = policy(backoff_base_s=0.5, backoff_max_s=4)
    for attempt, top in [(0, 0.5), (1, 1.0), (2, 2.0), (3, 4.0), (7, 4.0)]:
        for _ in range(20):
            assert 0.75 * top <= p.delay(attempt, None) <= top


def test_next_delay_stops_at_max_retries_deadline_streamed_bytes_and_should_retry_false() -> None:
    p = policy(max_retries=2, deadline_s=30)
    assert p.next_delay(0, status=503) is not None
    assert p.next_delay(1, status=503) is not None
    assert p.next_delay(2, status=503) is None  # two retries used
    assert p.next_delay(0, status=429, headers={"retry-after": "20"}, elapsed_s=5) == 20.0
    assert p.next_delay(0, status=429, headers={"retry-after": "20"}, elapsed_s=15) is None  # past the deadline
    assert p.next_delay(0, status=502, bytes_sent=True) is None  # the client already has bytes
    assert p.next_delay(0, status=429, headers={"x-should-retry": "false"}) is None
    assert p.max_retries == 2 and p.deadline_s == 30
