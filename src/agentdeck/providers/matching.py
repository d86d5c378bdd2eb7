"""Which provider serves a model: exact names, fnmatch globs, dated snapshots and aliases.

Order (docs/providers.md): the caller's protocol first narrows the providers; then
1. the model as sent, against each provider in config order (exact entries and globs alike);
2. only if nothing matched: the model without a snapshot or alias suffix (`-20250929`,
   `-2025-04-14`, `-latest`, `@20250929`, Gemini's version `-001`), again in config order; a dated exact entry also
   stands for its undated alias.
The first provider that matches wins. Results are cached per (model, protocol), so the request
path pays one dict lookup after a model's first call.
"""

from __future__ import annotations

import re
from fnmatch import translate
from typing import TYPE_CHECKING, Mapping

if TYPE_CHECKING:
    from agentdeck.config import ProviderConfig

_SNAPSHOT = re.compile(r"^(.+?)(?:-\d{8}|-\d{4}-\d{2}-\d{2}|-latest|@\d{8}|-\d{3})$")
_GLOB_CHARS = frozenset("*?[")
_CACHE_MAX = 4096  # model names come from callers: bound the memo so odd names cannot grow it forever


def is_glob(pattern: str) -> bool:
    """Whether a `models` entry is a pattern rather than a model name."""
    return not _GLOB_CHARS.isdisjoint(pattern)


def snapshot_base(model: str) -> str | None:
    """The model a dated snapshot or alias names (`claude-sonnet-4-5-20250929` -> `claude-sonnet-4-5`), or None."""
    m = _SNAPSHOT.match(model)
    return m.group(1) if m else None


class _Patterns:
    """One provider's `models` entries, compiled once."""

    __slots__ = ("exact", "aliases", "globs", "regex", "entries")

    def __init__(self, entries: list[str]) -> None:
        self.entries = list(entries)
        self.exact = {e for e in entries if not is_glob(e)}
        self.aliases = {b for e in self.exact if (b := snapshot_base(e)) is not None}
        self.globs = [e for e in entries if is_glob(e)]
        self.regex = re.compile("|".join(translate(g) for g in self.globs)) if self.globs else None

    def literal(self, model: str) -> bool:
        return model in self.exact or (self.regex is not None and self.regex.match(model) is not None)

    def snapshot(self, model: str, base: str | None) -> bool:
        if base is not None and self.literal(base):
            return True
        return model in self.aliases or (base is not None and base in self.aliases)


class ModelMatcher:
    """Resolves a model name to the provider that serves it; built once from the providers."""

    def __init__(self, providers: Mapping[str, "ProviderConfig"]) -> None:
        self._providers: list[tuple[str, str, _Patterns]] = [
            (name, p.protocol, _Patterns(p.models)) for name, p in providers.items()]
        self._cache: dict[tuple[str, str | None], str | None] = {}

    def provider_for(self, model: str, protocol: str) -> str | None:
        """The first provider (config order) of this protocol whose patterns match `model`, else None."""
        key = (model, protocol)
        try:
            return self._cache[key]
        except KeyError:
            pass
        found = self._find(model, protocol)
        if len(self._cache) >= _CACHE_MAX:
            self._cache.clear()
        self._cache[key] = found
        return found

    def any_provider_for(self, model: str) -> str | None:
        """The first provider (config order) of any protocol whose patterns match `model`, else None."""
        key = (model, None)
        try:
            return self._cache[key]
        except KeyError:
            pass
        found = self._find(model, None)
        if len(self._cache) >= _CACHE_MAX:
            self._cache.clear()
        self._cache[key] = found
        return found

    def serves(self, model: str) -> bool:
        """Whether any provider, of any protocol, matches `model` (a translating gateway can reach it)."""
        return self.any_provider_for(model) is not None

    def _find(self, model: str, protocol: str | None) -> str | None:
        candidates = [(n, pat) for n, proto, pat in self._providers if protocol is None or proto == protocol]
        for name, pat in candidates:
            if pat.literal(model):
                return name
        base = snapshot_base(model)
        for name, pat in candidates:
            if pat.snapshot(model, base):
                return name
        return None

    def explain_missing(self, model: str, protocol: str) -> str:
        """The 404 text for a model no provider of `protocol` serves: who was asked, with what patterns."""
        mine = [f"{name} ({', '.join(pat.entries) or 'no models'})" for name, proto, pat in self._providers
                if proto == protocol]
        asked = "; ".join(mine) if mine else "none is configured"
        text = (f"unknown model {model!r}: no {protocol} provider's models match it "
                f"({protocol} providers: {asked})")
        others = [f"{name} ({proto})" for name, proto, _ in self._providers
                  if proto != protocol and self._find_one(name, model)]
        if others:
            text += f"; it matches {', '.join(others)}, which speak{'s' if len(others) == 1 else ''} another protocol"
        return text + "; use auto, fast, balanced, smart or a model a provider's `models` patterns match"

    def _find_one(self, provider: str, model: str) -> bool:
        base = snapshot_base(model)
        for name, _, pat in self._providers:
            if name == provider:
                return pat.literal(model) or pat.snapshot(model, base)
        return False

    def listed_models(self) -> list[tuple[str, str]]:
        """(model, provider) for every exact (non-glob) entry, config order, each model once: GET /v1/models."""
        seen: set[str] = set()
        out: list[tuple[str, str]] = []
        for name, _, pat in self._providers:
            for entry in pat.entries:
                if entry not in pat.exact or entry in seen:
                    continue
                seen.add(entry)
                out.append((entry, name))
        return out

    def patterns(self) -> dict[str, list[str]]:
        """Each provider's `models` entries as configured (for status pages and error texts)."""
        return {name: list(pat.entries) for name, _, pat in self._providers}
