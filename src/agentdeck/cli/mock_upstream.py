"""`agentdeck mock-upstream`: the simulated OpenAI + Anthropic provider as a standalone server."""

from __future__ import annotations

import argparse
import math
import sys
from typing import Any

from agentdeck.errors import AgentdeckError

DEFAULT_PORT = 8789


class MockUpstreamError(AgentdeckError):
    """A bad flag value or an unusable address for the mock provider."""


def register(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "mock-upstream",
        parents=parents,
        help="run the simulated LLM provider (OpenAI + Anthropic protocols, streaming and not)",
        description="Serve a mock provider that the official openai/anthropic SDKs cannot tell from the real one. "
        "Magic words in the last user message script single requests (see docs/mock-upstream.md).",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port to bind, 0 = any free port (default {DEFAULT_PORT})")
    p.add_argument("--latency-ms", type=float, default=0.0, metavar="X", help="delay before each answer / first stream byte")
    p.add_argument("--token-ms", type=float, default=0.0, metavar="X", help="delay between streamed chunks")
    p.add_argument("--rate-429", type=float, default=0.0, metavar="P", help="probability of an injected 429")
    p.add_argument("--rate-5xx", type=float, default=0.0, metavar="P", help="probability of an injected 500")
    p.add_argument("--rate-529", type=float, default=0.0, metavar="P", help="probability of an injected 529 (503 on OpenAI paths)")
    p.add_argument("--rps-limit", type=float, default=None, metavar="N", help="hard limit per sliding second; above it 429 + retry-after")
    p.add_argument("--output-tokens", type=int, default=24, metavar="N", help="output tokens per answer (default 24)")
    p.add_argument("--seed", type=int, default=0, metavar="N", help="RNG seed for injected errors and the text (default 0)")
    shapes = p.add_argument_group("shapes real providers send (docs/mock-upstream.md)")
    shapes.add_argument("--crlf", action="store_true", help="frame SSE streams with CRLF line ends")
    shapes.add_argument("--spaced-json", action="store_true", help='JSON with ", " and ": " separators instead of compact')
    shapes.add_argument("--pings", action="store_true", help='": ping" comments in streams; Anthropic also repeats event: ping')
    shapes.add_argument("--thinking", action="store_true", help="Anthropic: a thinking block with thinking_delta and signature_delta")
    shapes.add_argument("--tool-use", action="store_true", help="Anthropic: a tool_use block with input_json_delta (stop_reason tool_use)")
    shapes.add_argument("--cached-tokens", type=int, default=0, metavar="N",
                        help="N more input tokens, read from cache (OpenAI cached_tokens, Anthropic cache_read_input_tokens)")
    shapes.add_argument("--cache-write-tokens", type=int, default=0, metavar="N",
                        help="N more input tokens, written to cache (Anthropic cache_creation_input_tokens)")
    shapes.add_argument("--reasoning-tokens", type=int, default=0, metavar="N",
                        help="N reasoning tokens inside the output; Responses answers open with a reasoning item")
    shapes.add_argument("--stream-error", action="store_true", help="every stream ends half-way in the protocol's error event")
    shapes.add_argument("--dated-models", action="store_true", help="answers name a dated snapshot of the requested model")
    shapes.add_argument("--models", default=None, metavar="GLOBS",
                        help="comma-separated model names or globs to serve, 404 for others (default: any model name)")
    p.set_defaults(func=run)


def _settings_from(args: argparse.Namespace) -> Any:
    from agentdeck.sim.mock import MockSettings

    for name in ("latency_ms", "token_ms"):
        v = getattr(args, name)
        if not math.isfinite(v) or v < 0:
            raise MockUpstreamError(f"--{name.replace('_', '-')} must be >= 0, got {v:g}")
    for name in ("rate_429", "rate_5xx", "rate_529"):
        v = getattr(args, name)
        if not 0.0 <= v <= 1.0:
            raise MockUpstreamError(f"--{name.replace('_', '-')} must be a probability in [0, 1], got {v:g}")
    if args.rps_limit is not None and (not math.isfinite(args.rps_limit) or args.rps_limit <= 0):
        raise MockUpstreamError(f"--rps-limit must be > 0, got {args.rps_limit:g}")
    if args.output_tokens < 0:
        raise MockUpstreamError(f"--output-tokens must be >= 0, got {args.output_tokens}")
    if not 0 <= args.port <= 65535:
        raise MockUpstreamError(f"--port must be in 0..65535, got {args.port}")
    for name in ("cached_tokens", "cache_write_tokens", "reasoning_tokens"):
        if getattr(args, name) < 0:
            raise MockUpstreamError(f"--{name.replace('_', '-')} must be >= 0, got {getattr(args, name)}")
    models = None
    if args.models is not None:
        models = [m.strip() for m in args.models.split(",") if m.strip()]
        if not models:
            raise MockUpstreamError("--models needs at least one model name or glob, e.g. --models 'claude-*,gpt-4o'")
    s = MockSettings(
        latency_ms=args.latency_ms, token_ms=args.token_ms, rate_429=args.rate_429, rate_5xx=args.rate_5xx,
        rate_529=args.rate_529, rps_limit=args.rps_limit, output_tokens=args.output_tokens, seed=args.seed,
        crlf=args.crlf, spaced_json=args.spaced_json, pings=args.pings, thinking=args.thinking, tool_use=args.tool_use,
        cached_tokens=args.cached_tokens, cache_write_tokens=args.cache_write_tokens, reasoning_tokens=args.reasoning_tokens,
        stream_error=args.stream_error, dated_models=args.dated_models, models=models,
    )
    try:
        s.validate()
    except ValueError as e:
        raise MockUpstreamError(str(e)) from None
    return s


def run(args: argparse.Namespace) -> int:
    settings = _settings_from(args)
    from agentdeck.sim.mock import serve_forever

    def listening(url: str) -> None:
        print(f"mock provider listening on {url}", flush=True)

    try:
        serve_forever(args.host, args.port, settings, on_listening=listening)
    except OSError as e:
        raise MockUpstreamError(f"cannot listen on {args.host}:{args.port}: {e.strerror or e}") from None
    except KeyboardInterrupt:
        pass
    sys.stdout.flush()
    return 0
