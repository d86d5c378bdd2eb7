"""Fingerprints of error descriptions, so a similar error after a fix counts as a recurrence.

Why words and not an exact hash: the same mistake is never described twice in the same words
("used hard delete on users" / "LLM hard-deleted the orders rows instead of soft delete"). The
signature is the set of meaningful, lightly stemmed words; the fingerprint is a hash of it (equal
fingerprints are certainly the same error) and similarity between signatures decides the rest.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

_URL = re.compile(r"https?://\S+")
_NUMBERISH = re.compile(r"\b(?:0x[0-9a-f]+|[0-9a-f]{8,}|\d+(?:[.:]\d+)*)\b")
_TOKEN = re.compile(r"[a-z][a-z0-9]+")
_STOP = frozenset(
    """a an the and or but if then than so of to in on at by for with from into onto as is are was were be been being
    it its it's this that these those there here when where which who whom what why how all any each every some no not
    nor do does did done doing have has had having can could would should will shall may might must just only also
    very too again still even ever our we us you your they them their he she his her i me my mine ours
    llm ai agent agents claude codex gpt model's instead used uses using use""".split()
)

#: Two errors are the same problem when their word sets overlap this much (Jaccard) ...
JACCARD_MIN = 0.5
#: ... or when the shorter description is almost contained in the longer one, with enough shared words.
CONTAINMENT_MIN = 0.8
SHARED_MIN = 3


def _stem(word: str) -> str:
    """Crude suffix stripping: enough to make delete/deletes/deleted/deleting one word."""
    for suffix in ("ing", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            word = word[: -len(suffix)]
            break
    return word.rstrip("e") if len(word) > 4 else word


def words(text: str) -> frozenset[str]:
    lowered = _NUMBERISH.sub(" ", _URL.sub(" ", text.lower()).replace("_", " ").replace("-", " "))
    return frozenset(_stem(w) for w in _TOKEN.findall(lowered) if w not in _STOP)


def signature(text: str) -> str:
    return " ".join(sorted(words(text)))


def fingerprint(text: str) -> str:
    return hashlib.sha1(signature(text).encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class Similarity:
    jaccard: float
    containment: float
    shared: int

    @property
    def similar(self) -> bool:
        return self.shared > 0 and (
            self.jaccard >= JACCARD_MIN or (self.containment >= CONTAINMENT_MIN and self.shared >= SHARED_MIN)
        )


def similarity(sig_a: str, sig_b: str) -> Similarity:
    a, b = set(sig_a.split()), set(sig_b.split())
    if not a or not b:
        return Similarity(0.0, 0.0, 0)
    shared = len(a & b)
    return Similarity(shared / len(a | b), shared / min(len(a), len(b)), shared)
