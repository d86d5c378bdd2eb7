"""Per-request caps: the first layer of cost protection, applied before anything is reserved.

Why cap max_tokens at half the model's output limit (the seed's rule): the worst-case cost
of a call is what the ledger reserves, and a looping agent that asks for 64k output tokens
per call burns a budget twice as fast as one capped at 32k. Inputs above a configured size
are refused outright (413) instead of being sent and priced.
"""

from __future__ import annotations

from agentdeck.config import CapsConfig, Config

# Output-token limits of the models we know (provider docs, 2026). Dated snapshots
# ("claude-sonnet-4-5-20250929", "gpt-4o-2024-08-06") match by prefix.
MODEL_OUTPUT_LIMITS: dict[str, int] = {
    "claude-haiku-4-5": 64_000,
    "claude-sonnet-4-5": 64_000,
    "claude-sonnet-4": 64_000,
    "claude-opus-4-5": 64_000,
    "claude-opus-4-1": 32_000,
    "gpt-4o": 16_384,
    "gpt-4o-mini": 16_384,
    "gpt-4.1": 32_768,
    "gpt-4.1-mini": 32_768,
    "gpt-4.1-nano": 32_768,
    "gpt-5": 128_000,
    "gpt-5-mini": 128_000,
    "gpt-5-nano": 128_000,
}

# Assumed output limit of a model we know nothing about: with the default share (0.5)
# this caps unknown models at 4096 tokens, the seed's per-request example.
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
    """The model's output-token limit: the config's ``[prices.MODEL] max_output_tokens``, else the table."""
    if cfg is not None:
        p = cfg.prices.get(model)
        if p is not None and p.max_output_tokens:
            return p.max_output_tokens
    if model in MODEL_OUTPUT_LIMITS:
        return MODEL_OUTPUT_LIMITS[model]
    best = ""
    for name in MODEL_OUTPUT_LIMITS:  # longest prefix wins: gpt-4o-mini-2024 is gpt-4o-mini, not gpt-4o
        if model.startswith(name + "-") and len(name) > len(best):
            best = name
    return MODEL_OUTPUT_LIMITS[best] if best else None


def max_tokens_cap(model_output_limit: int | None, caps: CapsConfig) -> int:
    """The largest max_tokens a call may ask for.

    ``caps.max_tokens`` when set (an absolute cap, also bounded by the model's limit);
    otherwise ``caps.max_tokens_share`` x the model's output limit, with
    :data:`UNKNOWN_MODEL_OUTPUT_LIMIT` standing in for models not in the table.
    """
    limit = model_output_limit or UNKNOWN_MODEL_OUTPUT_LIMIT
    if caps.max_tokens is not None:
        return max(1, min(caps.max_tokens, limit))
    return max(1, int(limit * caps.max_tokens_share))


def clamp_max_tokens(requested: int | None, model_output_limit: int | None, caps: CapsConfig) -> int:
    """The max_tokens to send upstream: the caller's value clamped to the cap.

    A caller that sends none (allowed by OpenAI) gets ``caps.default_max_tokens``, also
    clamped, so that every call has a bounded worst case to reserve.
    """
    cap = max_tokens_cap(model_output_limit, caps)
    if requested is None or requested <= 0:
        return min(caps.default_max_tokens, cap)
    return min(int(requested), cap)


def check_input_size(input_tokens: int, caps: CapsConfig) -> None:
    """Raise :class:`InputTooLarge` when the (estimated) input is over the cap."""
    if input_tokens > caps.max_input_tokens:
        raise InputTooLarge(input_tokens, caps.max_input_tokens)


def worst_case_cost(price_in_per_mtok: float, price_out_per_mtok: float, input_tokens: int, max_tokens: int) -> float:
    """What a call can cost at most: all its input plus max_tokens of output, at list prices."""
    return (max(0, input_tokens) * price_in_per_mtok + max(0, max_tokens) * price_out_per_mtok) / 1_000_000
