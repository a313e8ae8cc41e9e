"""Uncertainty of evaluation results: percentile bootstrap intervals over items (or windows, or documents), paired comparisons.

A *statistic* is a function of resampled index rows: given an integer array of shape `(resamples, n)` (each row
a sample of `n` indices drawn with replacement from `range(n)`), it returns the metric of every row, shape
`(resamples,)`. The metric of the evaluated items themselves is the statistic of the single row `arange(n)`.
The factories below build the statistics the tasks and perplexity use; `bootstrap_interval` and
`paired_bootstrap` draw the index rows from a seeded NumPy generator, so the same seed gives the same interval,
and two models evaluated on the same items are compared on the same resamples (a paired bootstrap).

Intervals are percentile intervals (the `(1 - confidence) / 2` and `(1 + confidence) / 2` quantiles of the
resampled metric, NumPy's default linear interpolation). The index rows take `resamples * n * 8` bytes
(2000 x 500 items: 8 MB).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "DEFAULT_RESAMPLES",
    "Statistic",
    "PairedDifference",
    "resample_indices",
    "bootstrap_interval",
    "paired_bootstrap",
    "mean_statistic",
    "perplexity_statistic",
    "group_sums",
    "macro_f1_statistic",
    "macro_f1_counts",
    "point_estimate",
]

#: Resamples of every interval unless told otherwise (the percentile endpoints move by < 0.003 between seeds
#: for an accuracy on 300 items).
DEFAULT_RESAMPLES = 2000

Statistic = Callable[[np.ndarray], np.ndarray]


def resample_indices(n: int, resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> np.ndarray:
    """`resamples` rows of `n` indices drawn with replacement from `range(n)`, from `numpy.random.default_rng(seed)`."""
    if n < 1:
        raise ValueError(f"n={n}: a bootstrap needs at least one item.")
    if resamples < 1:
        raise ValueError(f"resamples={resamples} must be at least 1.")
    return np.random.default_rng(seed).integers(0, n, size=(resamples, n))


def point_estimate(statistic: Statistic, n: int) -> float:
    """The statistic of the items themselves (no resampling)."""
    return float(statistic(np.arange(n)[None, :])[0])


def _percentiles(values: np.ndarray, confidence: float) -> tuple[float, float]:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence={confidence} must be in (0, 1), e.g. 0.95.")
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def bootstrap_interval(
    statistic: Statistic, n: int, resamples: int = DEFAULT_RESAMPLES, confidence: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of `statistic` over `n` items.

    Args:
        statistic: metric of each row of an index array (see the module docstring).
        n (`int`): number of items (or windows).
        resamples (`int`, *optional*, defaults to `DEFAULT_RESAMPLES`): bootstrap resamples.
        confidence (`float`, *optional*, defaults to 0.95): coverage the interval aims at.
        seed (`int`, *optional*, defaults to 0): seed of the resampled indices.

    Returns:
        `tuple[float, float]`: the interval's lower and upper ends.
    """
    return _percentiles(statistic(resample_indices(n, resamples, seed)), confidence)


@dataclass(frozen=True)
class PairedDifference:
    """Metric of A minus metric of B (or A / B - 1 when `relative`), with a paired percentile bootstrap interval."""

    difference: float
    low: float
    high: float
    relative: bool = False

    @property
    def significant(self) -> bool:
        """True when the interval excludes 0 (A and B differ at the interval's confidence)."""
        return self.low > 0 or self.high < 0


def paired_bootstrap(
    statistic_a: Statistic,
    statistic_b: Statistic,
    n: int,
    relative: bool = False,
    resamples: int = DEFAULT_RESAMPLES,
    confidence: float = 0.95,
    seed: int = 0,
) -> PairedDifference:
    """Difference between two models evaluated on the same `n` items, resampling the items jointly.

    Each resample draws one set of item indices and evaluates both statistics on it, so what the items have in
    common (an easy item is easy for both) cancels out of the difference.

    Args:
        statistic_a, statistic_b: the two models' statistics over the same items, in the same order.
        n (`int`): number of items (or windows).
        relative (`bool`, *optional*, defaults to `False`): compare A / B - 1 (for perplexities) instead of A - B.
        resamples, confidence, seed: as in `bootstrap_interval`.
    """
    indices = resample_indices(n, resamples, seed)
    a, b = statistic_a(indices), statistic_b(indices)
    resampled = a / b - 1 if relative else a - b
    point_a, point_b = point_estimate(statistic_a, n), point_estimate(statistic_b, n)
    difference = point_a / point_b - 1 if relative else point_a - point_b
    return PairedDifference(difference, *_percentiles(resampled, confidence), relative=relative)


def mean_statistic(values: Sequence[float]) -> Statistic:
    """Mean of per-item values (accuracy from 0/1 correctness, ROUGE from per-item scores)."""
    array = np.asarray(values, dtype=np.float64)
    return lambda indices: array[indices].mean(axis=1)


def perplexity_statistic(nll_sums: Sequence[float], token_counts: Sequence[int]) -> Statistic:
    """exp(sum of NLL / sum of tokens) over resampled windows (a ratio estimator: windows may differ in length)."""
    nll, tokens = np.asarray(nll_sums, dtype=np.float64), np.asarray(token_counts, dtype=np.float64)
    return lambda indices: np.exp(nll[indices].sum(axis=1) / tokens[indices].sum(axis=1))


def group_sums(groups: Sequence[int], *values: Sequence[float]) -> tuple[np.ndarray, ...]:
    """Per-group sums of each of `values` (one array per argument, one entry per distinct group, in sorted group
    order): the units of a clustered bootstrap, e.g. documents from their windows' NLL and token sums."""
    inverse = np.unique(np.asarray(groups), return_inverse=True)[1]
    return tuple(np.bincount(inverse, weights=np.asarray(v, dtype=np.float64)) for v in values)


def macro_f1_counts(predictions: np.ndarray, references: np.ndarray, num_labels: int) -> np.ndarray:
    """Macro-F1 of each row of label codes (`predictions`, `references`: integer arrays of the same shape `(rows, n)`).

    Codes `0 .. num_labels - 1` are averaged over; any other code (a prediction outside the label set) counts
    against the reference's label only. A label with no true positive scores 0.
    """
    scores = np.zeros(predictions.shape[0])
    for label in range(num_labels):
        predicted, actual = predictions == label, references == label
        tp = (predicted & actual).sum(axis=1)
        fp = (predicted & ~actual).sum(axis=1)
        fn = (~predicted & actual).sum(axis=1)
        denominator = np.maximum(2 * tp + fp + fn, 1)
        scores += np.where(tp > 0, 2 * tp / denominator, 0.0)
    return scores / num_labels


def macro_f1_statistic(predictions: Sequence, references: Sequence, labels: Sequence) -> Statistic:
    """Macro-F1 over `labels` of resampled (prediction, reference) pairs."""
    codes = {label: code for code, label in enumerate(labels)}
    unknown = len(codes)
    p = np.asarray([codes.get(x, unknown) for x in predictions])
    r = np.asarray([codes.get(x, unknown) for x in references])
    return lambda indices: macro_f1_counts(p[indices], r[indices], len(codes))
