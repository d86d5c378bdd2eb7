"""Per-provider limits: AIMD-controlled slots and pacing, retry rules and a circuit breaker.

The gateway's request path uses it like this (one slot for the whole request)::

    lim = limiters[provider]
    async with lim.slot():                 # may raise Throttled -> 429 + retry-after
        for attempt in range(policy.max_retries + 1):
            await lim.pace()
            resp = await send(...)
            lim.observe(resp.status, resp.headers)
            ...
"""

from agentdeck.limits.aimd import AimdController
from agentdeck.limits.breaker import CircuitBreaker
from agentdeck.limits.headers import parse_go_duration, parse_rate_limit_headers, parse_reset, retry_after_hint
from agentdeck.limits.limiter import ProviderLimiter, Throttled
from agentdeck.limits.retry import NEVER_RETRY_STATUSES, RETRYABLE_STATUSES, RetryPolicy

__all__ = [
    "NEVER_RETRY_STATUSES",
    "RETRYABLE_STATUSES",
    "AimdController",
    "CircuitBreaker",
    "ProviderLimiter",
    "RetryPolicy",
    "Throttled",
    "parse_go_duration",
    "parse_rate_limit_headers",
    "parse_reset",
    "retry_after_hint",
]
