"""An optional second opinion from the gateway's fast tier.

Why optional and bounded: the offline suggestion is the product; a model's opinion is a tie-breaker
for oddly worded errors. So it is off unless asked for, goes through the agentdeck gateway (budgets,
kill switch and logging apply), uses the `fast` tier with a small max_tokens and a short timeout,
and any failure (no gateway, stopped, over budget, nonsense answer) simply means no second opinion.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from agentdeck.diagnose.framework import CATEGORY_KEYS, CategoryKey

MAX_TOKENS = 120
TIMEOUT_S = 8.0

_SYSTEM = (
    "You classify an LLM coding error into exactly one root cause of the five-point framework: "
    "context (the model lacked information: examples, versions, project patterns), "
    "model (the model was not capable enough: complex or large task, incomplete), "
    "rules (the behaviour was never written down as an explicit rule), "
    "testing (tests were too weak: passed but broke in integration or production), "
    "quality_gate (no automated lint/type/AST-grep/pre-commit check enforced it). "
    'Answer with JSON only: {"category": "<one of context|model|rules|testing|quality_gate>", '
    '"why": "<one short sentence>"}'
)
_JSON_OBJECT = re.compile(r"\{.*\}", re.DOTALL)


@dataclass(frozen=True)
class SecondOpinion:
    category: CategoryKey
    why: str
    model: str

    def to_json(self) -> dict[str, Any]:
        return {"category": self.category, "why": self.why, "model": self.model}


def _parse(content: str) -> tuple[CategoryKey, str] | None:
    m = _JSON_OBJECT.search(content)
    if m is None:
        return None
    try:
        data = json.loads(m.group(0))
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    cat = str(data.get("category", "")).strip().lower().replace(" ", "_").replace("-", "_")
    if cat not in CATEGORY_KEYS:
        return None
    why = data.get("why", "")
    return cat, " ".join(str(why).split())[:300]  # type: ignore[return-value]


def ask_gateway(
    base_url: str, key: str, error: str, *, timeout: float = TIMEOUT_S, max_tokens: int = MAX_TOKENS
) -> SecondOpinion | None:
    """POST the error to ``{base_url}/v1/chat/completions`` (model ``fast``); None on any failure."""
    import httpx

    url = base_url.rstrip("/")
    if url.endswith("/v1"):
        url = url[: -len("/v1")]
    body = {
        "model": "fast",
        "max_tokens": max_tokens,
        "temperature": 0,
        "messages": [
            {"role": "system", "content": _SYSTEM},
            {"role": "user", "content": f"Error: {error.strip()[:2000]}"},
        ],
    }
    try:
        r = httpx.post(
            f"{url}/v1/chat/completions",
            json=body,
            headers={"Authorization": f"Bearer {key}"},
            timeout=httpx.Timeout(timeout, connect=min(timeout, 2.0)),
        )
        if r.status_code != 200:
            return None
        data = r.json()
        content = data["choices"][0]["message"]["content"]
        parsed = _parse(content if isinstance(content, str) else "")
        if parsed is None:
            return None
        return SecondOpinion(parsed[0], parsed[1], str(data.get("model") or r.headers.get("x-agentdeck-model", "fast")))
    except Exception:  # noqa: BLE001 - a second opinion must never break the wizard
        return None
