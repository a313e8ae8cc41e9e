"""Scores of predictions against references: accuracy, macro-F1 and ROUGE (mean and per item)."""

from __future__ import annotations

from collections.abc import Sequence

from .uncertainty import macro_f1_statistic, point_estimate

__all__ = ["accuracy", "macro_f1", "rouge", "rouge_per_item"]


def _check_lengths(predictions: Sequence, references: Sequence) -> None:
    if len(predictions) != len(references):
        raise ValueError(f"got {len(predictions)} predictions for {len(references)} references; pass one per reference.")
    if not references:
        raise ValueError("no references to score; pass at least one item.")


def accuracy(predictions: Sequence, references: Sequence) -> float:
    """Fraction of predictions equal to their reference."""
    _check_lengths(predictions, references)
    return sum(p == r for p, r in zip(predictions, references)) / len(references)


def macro_f1(predictions: Sequence, references: Sequence, labels: Sequence | None = None) -> float:
    """Unweighted mean over `labels` of each label's F1 (a label never predicted nor present scores 0).

    Args:
        predictions: predicted labels.
        references: true labels.
        labels (*optional*): the label set to average over; defaults to the labels seen in either list, so pass
            the task's full label set to count a label that is never predicted.
    """
    _check_lengths(predictions, references)
    labels = sorted(set(predictions) | set(references), key=str) if labels is None else list(labels)
    return point_estimate(macro_f1_statistic(predictions, references, labels), len(references))


def rouge_per_item(predictions: Sequence[str], references: Sequence[str], use_stemmer: bool = True) -> dict[str, list[float]]:
    """ROUGE-1, ROUGE-2 and ROUGE-L F-measure of each prediction against its reference (`rouge-score`), in [0, 1]."""
    from rouge_score import rouge_scorer

    _check_lengths(predictions, references)
    kinds = ("rouge1", "rouge2", "rougeL")
    scorer = rouge_scorer.RougeScorer(list(kinds), use_stemmer=use_stemmer)
    per_item: dict[str, list[float]] = {kind: [] for kind in kinds}
    for prediction, reference in zip(predictions, references):
        scores = scorer.score(reference, prediction)  # rouge-score takes (target, prediction)
        for kind in kinds:
            per_item[kind].append(scores[kind].fmeasure)
    return per_item


def rouge(predictions: Sequence[str], references: Sequence[str], use_stemmer: bool = True) -> dict[str, float]:
    """Mean ROUGE-1, ROUGE-2 and ROUGE-L F-measures (`rouge-score`, the package HF `evaluate` wraps), in [0, 1]."""
    per_item = rouge_per_item(predictions, references, use_stemmer)
    return {kind: sum(values) / len(values) for kind, values in per_item.items()}
