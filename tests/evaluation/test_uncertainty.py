"""Bootstrap intervals and paired comparisons on synthetic samples whose truth is known."""

from __future__ import annotations

import math

import numpy as np
import pytest

from optimum_dpruner.evaluation.metrics import macro_f1
from optimum_dpruner.evaluation.uncertainty import (
    bootstrap_interval,
    group_sums,
    macro_f1_statistic,
    mean_statistic,
    paired_bootstrap,
    perplexity_statistic,
    point_estimate,
)


def test_interval_of_a_bernoulli_mean_covers_the_truth_95_percent_of_the_time():
    """1000 samples of 200 items with p = 0.3: the percentile interval should hold p in about 95% of them."""
    rng = np.random.default_rng(1)
    p, n, trials = 0.3, 200, 1000
    covered = 0
    for trial in range(trials):
        sample = rng.random(n) < p
        low, high = bootstrap_interval(mean_statistic(sample), n, resamples=1000, seed=trial)
        covered += low <= p <= high
    # binomial sd of the coverage over 1000 trials is 0.007; the percentile interval runs a little short at n = 200
    assert 0.925 <= covered / trials <= 0.97


def test_interval_width_matches_the_normal_approximation_and_is_seeded():
    sample = np.array([1] * 240 + [0] * 160)  # accuracy 0.6 on 400 items
    low, high = bootstrap_interval(mean_statistic(sample), len(sample), seed=0)
    wald = 1.96 * math.sqrt(0.6 * 0.4 / 400)
    assert high - low == pytest.approx(2 * wald, rel=0.1)
    assert low < 0.6 < high
    assert bootstrap_interval(mean_statistic(sample), len(sample), seed=0) == (low, high)  # deterministic
    assert bootstrap_interval(mean_statistic([0.5] * 20), 20) == (0.5, 0.5)  # no spread, no width


def test_perplexity_interval_is_a_ratio_over_windows_and_covers_the_truth():
    """Windows of unequal length with per-token NLL ~ N(2, 1): the true perplexity is e^2."""
    rng = np.random.default_rng(0)
    covered, trials = 0, 300
    for trial in range(trials):
        tokens = rng.integers(50, 512, size=60)
        nll = np.array([rng.normal(2.0, 1.0, size=t).sum() for t in tokens])
        statistic = perplexity_statistic(nll, tokens)
        assert point_estimate(statistic, 60) == pytest.approx(math.exp(nll.sum() / tokens.sum()))
        low, high = bootstrap_interval(statistic, 60, resamples=1000, seed=trial)
        covered += low <= math.exp(2.0) <= high
    assert 0.91 <= covered / trials <= 0.98


def test_paired_bootstrap_finds_a_small_shared_item_difference_that_separate_intervals_miss():
    rng = np.random.default_rng(3)
    a = rng.random(300) < 0.6
    b = a.copy()
    b[np.flatnonzero(a)[:15]] = False  # B gets 15 of A's right items wrong: 5 points lower, on the same items
    same = paired_bootstrap(mean_statistic(a), mean_statistic(a), 300)
    assert (same.difference, same.low, same.high, same.significant) == (0.0, 0.0, 0.0, False)
    paired = paired_bootstrap(mean_statistic(a), mean_statistic(b), 300)
    assert paired.difference == pytest.approx(0.05) and paired.significant and paired.low > 0
    # the unpaired intervals of A and B overlap: only pairing shows the difference
    a_low, a_high = bootstrap_interval(mean_statistic(a), 300)
    b_low, b_high = bootstrap_interval(mean_statistic(b), 300)
    assert b_high > a_low
    relative = paired_bootstrap(perplexity_statistic([30.0, 40.0], [10, 10]), perplexity_statistic([20.0, 30.0], [10, 10]), 2,
                                relative=True)
    assert relative.difference == pytest.approx(math.exp(70 / 20 - 50 / 20) - 1) and relative.relative


def test_macro_f1_statistic_equals_the_metric_on_each_resample():
    predictions = ["yes", "yes", "no", "maybe", "no", "yes", "other"]
    references = ["yes", "no", "no", "maybe", "yes", "yes", "maybe"]
    labels = ("yes", "no", "maybe")
    statistic = macro_f1_statistic(predictions, references, labels)
    rows = np.random.default_rng(0).integers(0, len(references), size=(50, len(references)))
    expected = [macro_f1([predictions[i] for i in row], [references[i] for i in row], labels) for row in rows]
    assert statistic(rows) == pytest.approx(expected)
    # hand count on the full sample: yes tp 2 fp 1 fn 1 -> 2/3; no tp 1 fp 1 fn 1 -> 1/2; maybe tp 1 fp 0 fn 1 -> 2/3
    assert point_estimate(statistic, len(references)) == pytest.approx((2 / 3 + 1 / 2 + 2 / 3) / 3)


@pytest.mark.parametrize("bad,match", [({"n": 0}, "n=0"), ({"resamples": 0}, "resamples"), ({"confidence": 1.5}, "confidence")])
def test_bootstrap_arguments_are_checked(bad, match):
    kwargs = {"n": 10, "resamples": 100, "confidence": 0.95} | bad
    with pytest.raises(ValueError, match=match):
        bootstrap_interval(mean_statistic([1.0] * 10), **kwargs)


def test_resampling_documents_covers_the_truth_where_resampling_their_windows_does_not():
    """20 documents of 15 windows each; a document's windows share its level (NLL per token ~ N(2 + u_d, 0.1), u_d ~
    N(0, 0.3)), as the windows of one long article do. Over 300 corpora the true perplexity e^2 falls inside the
    window interval far less often than 95%, inside the document interval (group_sums of the windows) about as often
    as a percentile interval on 20 units gives."""
    rng = np.random.default_rng(0)
    documents, per_document, trials = 20, 15, 300
    groups = np.repeat(np.arange(documents), per_document)
    tokens = np.full(documents * per_document, 100.0)
    covered = {"windows": 0, "documents": 0}
    for trial in range(trials):
        level = 2 + rng.normal(0, 0.3, documents)[groups] + rng.normal(0, 0.1, len(groups))
        nll = level * tokens
        low, high = bootstrap_interval(perplexity_statistic(nll, tokens), len(nll), resamples=500, seed=trial)
        covered["windows"] += low <= math.e**2 <= high
        summed = group_sums(groups, nll, tokens)
        assert summed[1].tolist() == [per_document * 100.0] * documents
        low, high = bootstrap_interval(perplexity_statistic(*summed), documents, resamples=500, seed=trial)
        covered["documents"] += low <= math.e**2 <= high
    assert covered["windows"] / trials < 0.5
    assert 0.85 <= covered["documents"] / trials <= 0.98


def test_group_sums_add_each_group_s_values_in_sorted_group_order():
    nll, tokens = group_sums([3, 3, 0, 7, 0], [1.0, 2.0, 4.0, 8.0, 16.0], [1, 1, 2, 3, 5])
    assert nll.tolist() == [20.0, 3.0, 8.0] and tokens.tolist() == [7.0, 2.0, 3.0]
