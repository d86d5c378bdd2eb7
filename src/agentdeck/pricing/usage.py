"""Token counts in one shape for both protocols, as the price table reads them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class Usage:
    """What one call used, split the way providers bill it.

    ``input_tokens`` is the uncached part of the prompt; cache reads and cache writes are
    counted separately (OpenAI reports cached tokens inside prompt_tokens and Anthropic
    reports them beside input_tokens: the protocol modules bring both to this shape so
    nothing is billed twice). ``cache_write_1h_tokens`` is the part of ``cache_write_tokens``
    written with a one-hour TTL (Anthropic bills it at a higher rate than the 5-minute
    default). ``reasoning_tokens`` is informational: it is already inside ``output_tokens``
    (both providers count it there), so it is never added on top.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cache_write_1h_tokens: int = 0
    reasoning_tokens: int = 0

    @property
    def total_input(self) -> int:
        """Every prompt token, cached or not: what providers compare with their tier thresholds."""
        return self.input_tokens + self.cache_read_tokens + self.cache_write_tokens
