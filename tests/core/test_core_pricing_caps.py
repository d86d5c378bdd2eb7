"""clamp_max_tokens: clamp only where the model's limit is known, never below the thinking floor."""

from __future__ import annotations

from agentdeck.budget import clamp_max_tokens, max_tokens_cap
from agentdeck.config import CapsConfig

SHARE = CapsConfig()  # max_tokens_share 0.5, default_max_tokens 4096
ABSOLUTE = CapsConfig(max_tokens=10_000)


def test_a_known_limit_clamps_to_the_share() -> None:
    assert max_tokens_cap(64_000, SHARE) == 32_000
    assert clamp_max_tokens(64_000, 64_000, SHARE) == 32_000
    assert clamp_max_tokens(1_000, 64_000, SHARE) == 1_000


def test_an_unknown_limit_does_not_clamp() -> None:
    assert max_tokens_cap(None, SHARE) is None
    assert clamp_max_tokens(64_000, None, SHARE) == 64_000


def test_an_absolute_cap_applies_with_or_without_a_known_limit() -> None:
    assert clamp_max_tokens(64_000, None, ABSOLUTE) == 10_000
    assert clamp_max_tokens(64_000, 8_192, ABSOLUTE) == 8_192  # bounded by the model's limit too


def test_a_call_without_max_tokens_gets_the_default_clamped() -> None:
    assert clamp_max_tokens(None, None, SHARE) == 4_096
    assert clamp_max_tokens(None, 4_096, SHARE) == 2_048
    assert clamp_max_tokens(0, None, CapsConfig(default_max_tokens=1_000)) == 1_000


def test_the_thinking_floor_is_never_clamped_below() -> None:
    # Claude Code: thinking.budget_tokens 40,000 with max_tokens 64,000 on a 64k model (share cap 32,000).
    floor = 40_000 + 1
    assert clamp_max_tokens(64_000, 64_000, SHARE, floor=floor) == 40_001
    assert clamp_max_tokens(64_000, 64_000, SHARE, floor=floor) > 40_000
    assert clamp_max_tokens(64_000, None, ABSOLUTE, floor=floor) == 40_001
    assert clamp_max_tokens(20_000, 64_000, SHARE, floor=floor) == 20_000  # the caller's own value is not raised
    assert clamp_max_tokens(64_000, 128_000, SHARE, floor=floor) == 64_000  # a cap above the floor still rules
    assert clamp_max_tokens(None, 64_000, SHARE, floor=floor) == 40_001
