"""Scores of predictions against references: accuracy, macro-F1 and ROUGE."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["accuracy", "macro_f1", "rouge"]


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
    scores = []
    for label in labels:
        tp = sum(p == label and r == label for p, r in zip(predictions, references))
        fp = sum(p == label and r != label for p, r in zip(predictions, references))
        fn = sum(p != label and r == label for p, r in zip(predictions, references))
        scores.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return sum(scores) / len(scores)


def rouge(predictions: Sequence[str], references: Sequence[str], use_stemmer: bool = True) -> dict[str, float]:
    """Mean ROUGE-1, ROUGE-2 and ROUGE-L F-measures (`rouge-score`, the package HF `evaluate` wraps), in [0, 1]."""
    from rouge_score import rouge_scorer

    _check_lengths(predictions, references)
    kinds = ("rouge1", "rouge2", "rougeL")
    scorer = rouge_scorer.RougeScorer(list(kinds), use_stemmer=use_stemmer)
    totals = dict.fromkeys(kinds, 0.0)
    for prediction, reference in zip(predictions, references):
        scores = scorer.score(reference, prediction)  # rouge-score takes (target, prediction)
        for kind in kinds:
            totals[kind] += scores[kind].fmeasure
    return {kind: total / len(references) for kind, total in totals.items()}
