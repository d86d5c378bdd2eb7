"""Per-request caps: the first layer of cost protection, applied before anything is reserved.

Why cap max_tokens at half the model's output limit (the seed's rule): the worst-case cost
of a call is what the ledger reserves, and a looping agent that asks for 64k output tokens
per call burns a budget twice as fast as one capped at 32k. Inputs above a configured size
are refused outright (413) instead of being sent and priced.
"""

from __future__ import annotations

from agentdeck.config import CapsConfig, Config

# Output-token limits (max_tokens a model accepts) from the providers' model pages, as of
# 2026. The price catalog (genai-prices) has no output limits, so this small table is kept
# here; `[prices."MODEL"] max_output_tokens` in the config adds or overrides entries.
# Matching: the exact name, else the longest entry the name extends with "-"
# ("gpt-4o-mini-2024-07-18" is gpt-4o-mini, not gpt-4o; "gpt-5.1" is not gpt-5).
# A model not here has no known limit: its max_tokens is not clamped by the share (docs/pricing.md).
MODEL_OUTPUT_LIMITS: dict[str, int] = {
    "claude-opus-4-5": 64_000,
    "claude-opus-4-1": 32_000,
    "claude-opus-4": 32_000,
    "claude-sonnet-4-5": 64_000,
    "claude-sonnet-4": 64_000,
    "claude-haiku-4-5": 64_000,
    "claude-3-7-sonnet": 64_000,
    "claude-3-5-sonnet": 8_192,
    "claude-3-5-haiku": 8_192,
    "claude-3-haiku": 4_096,
    "gpt-4o": 16_384,
    "gpt-4o-mini": 16_384,
    "gpt-4.1": 32_768,
    "gpt-4.1-mini": 32_768,
    "gpt-4.1-nano": 32_768,
    "gpt-5": 128_000,
    "gpt-5-mini": 128_000,
    "gpt-5-nano": 128_000,
    "gpt-5.1": 128_000,
    "o1": 100_000,
    "o3": 100_000,
    "o3-mini": 100_000,
    "o4-mini": 100_000,
    "gemini-2.5-pro": 65_536,
    "gemini-2.5-flash": 65_536,
    "gemini-2.5-flash-lite": 65_536,
}

# Kept for callers of the old rule (an unknown model was capped as if its limit were this).
# No longer used by clamp_max_tokens: an unknown limit does not clamp (issue 12).
UNKNOWN_MODEL_OUTPUT_LIMIT = 8192


class InputTooLarge(Exception):
    """The request's input is over ``caps.max_input_tokens``. The gateway answers 413."""

    status = 413

    def __init__(self, input_tokens: int, limit: int) -> None:
        self.input_tokens = input_tokens
        self.limit = limit
        self.message = (f"request input is about {input_tokens:,} tokens, over this gateway's limit of {limit:,} "
                        f"([caps] max_input_tokens); send less context or raise the cap")
        super().__init__(self.message)


def model_output_limit(model: str, cfg: Config | None = None) -> int | None:
    """The model's output-token limit, None when unknown.

    The config's ``[prices."MODEL"] max_output_tokens`` first (for the model or the model a
    dated snapshot names), then :data:`MODEL_OUTPUT_LIMITS` (exact, else longest prefix).
    """
    if cfg is not None and cfg.prices:
        from agentdeck.providers.matching import snapshot_base

        for name in (model, snapshot_base(model)):
            p = cfg.prices.get(name) if name else None
            if p is not None and p.max_output_tokens:
                return p.max_output_tokens
    limit = MODEL_OUTPUT_LIMITS.get(model)
    if limit is not None:
        return limit
    best = ""
    for name in MODEL_OUTPUT_LIMITS:  # longest prefix wins: gpt-4o-mini-2024 is gpt-4o-mini, not gpt-4o
        if len(name) > len(best) and model.startswith(name + "-"):
            best = name
    return MODEL_OUTPUT_LIMITS[best] if best else None


def max_tokens_cap(model_output_limit: int | None, caps: CapsConfig) -> int | None:
    """The largest max_tokens a call may ask for, None when nothing caps it.

    ``caps.max_tokens`` when set (an absolute cap, also bounded by the model's limit when
    known); otherwise ``caps.max_tokens_share`` x the model's output limit. A model whose
    limit is unknown gets no share cap: guessing a limit clamped new models' calls (a
    4,096-token answer for a model that allows 128k) and the provider enforces its own.
    """
    if caps.max_tokens is not None:
        if model_output_limit:
            return max(1, min(caps.max_tokens, model_output_limit))
        return caps.max_tokens
    if model_output_limit:
        return max(1, int(model_output_limit * caps.max_tokens_share))
    return None


def clamp_max_tokens(requested: int | None, model_output_limit: int | None, caps: CapsConfig,
                     floor: int | None = None) -> int:
    """The max_tokens to send upstream: the caller's value clamped to the cap.

    A caller that sends none (allowed by OpenAI) gets ``caps.default_max_tokens``, also
    clamped, so that every call has a bounded worst case to reserve. ``floor`` is the least
    the cap may clamp to: the gateway passes ``thinking.budget_tokens + 1`` for Anthropic
    calls with extended thinking, which the provider rejects unless max_tokens is above the
    budget. The floor never raises a caller's own value (that is the provider's to judge).
    """
    cap = max_tokens_cap(model_output_limit, caps)
    if cap is not None and floor is not None and floor > cap:
        cap = floor
    if requested is None or requested <= 0:
        value = caps.default_max_tokens if cap is None else min(caps.default_max_tokens, cap)
        return value if floor is None else max(value, floor)
    return int(requested) if cap is None else min(int(requested), cap)


def check_input_size(input_tokens: int, caps: CapsConfig) -> None:
    """Raise :class:`InputTooLarge` when the (estimated) input is over the cap."""
    if input_tokens > caps.max_input_tokens:
        raise InputTooLarge(input_tokens, caps.max_input_tokens)


def worst_case_cost(price_in_per_mtok: float, price_out_per_mtok: float, input_tokens: int, max_tokens: int) -> float:
    """What a call can cost at most: all its input plus max_tokens of output, at list prices."""
    return (max(0, input_tokens) * price_in_per_mtok + max(0, max_tokens) * price_out_per_mtok) / 1_000_000
