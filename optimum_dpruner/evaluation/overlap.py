"""Do evaluation texts share text with calibration texts? Word n-gram overlap, as contamination checks do."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["OverlapReport", "ngram_overlap"]

_WORD = re.compile(r"\w+")


def _ngrams(text: str, n: int) -> set[int]:
    words = _WORD.findall(text.lower())
    return {hash(tuple(words[i : i + n])) for i in range(len(words) - n + 1)}


@dataclass
class OverlapReport:
    """How much of each evaluation document also occurs, as word n-grams, in the calibration texts."""

    n: int
    documents: int
    documents_sharing_a_span: int
    max_fraction: float
    near_duplicates: list[int]  # indices of evaluation documents with at least `threshold` of their n-grams shared
    threshold: float

    @property
    def clean(self) -> bool:
        """True when no evaluation document is a near-duplicate of calibration text."""
        return not self.near_duplicates


def ngram_overlap(calibration: Iterable[str], evaluation: Iterable[str], n: int = 13, threshold: float = 0.5) -> OverlapReport:
    """Compare every evaluation document's word `n`-grams (lower-cased) with all calibration n-grams.

    A shared 13-word span can be boilerplate (a citation, a statute's standard wording); a document most of whose
    n-grams occur in the calibration texts is the same document. `near_duplicates` lists those at or above
    `threshold`; documents shorter than `n` words are skipped.
    """
    seen: set[int] = set()
    for text in calibration:
        seen |= _ngrams(text, n)
    documents = sharing = 0
    max_fraction = 0.0
    near: list[int] = []
    for index, text in enumerate(evaluation):
        grams = _ngrams(text, n)
        if not grams:
            continue
        documents += 1
        fraction = len(grams & seen) / len(grams)
        sharing += fraction > 0
        max_fraction = max(max_fraction, fraction)
        if fraction >= threshold:
            near.append(index)
    return OverlapReport(n, documents, sharing, max_fraction, near, threshold)
