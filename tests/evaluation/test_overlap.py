"""Calibration/evaluation overlap: word n-gram fractions on texts built so the answer is known."""

import pytest

from optimum_dpruner.evaluation.overlap import ngram_overlap

WORDS = [f"w{i}" for i in range(100)]


def test_overlap_fractions_are_exact():
    calibration = [" ".join(WORDS[:40])]
    copy = " ".join(WORDS[:40]).upper()  # case does not hide a copy
    one_span = " ".join(WORDS[:13] + [f"x{i}" for i in range(9)])  # 22 words: 10 13-grams, 1 shared
    unrelated = " ".join(f"y{i}" for i in range(30))
    short = "too short to hold a span"
    report = ngram_overlap(calibration, [copy, one_span, unrelated, short], n=13)
    assert report.documents == 3  # the short one has no 13-gram
    assert report.documents_sharing_a_span == 2
    assert report.max_fraction == 1.0
    assert report.near_duplicates == [0] and not report.clean
    partial = ngram_overlap(calibration, [one_span], n=13)
    assert partial.max_fraction == pytest.approx(1 / 10) and partial.clean


def test_bundled_splits_are_clean():
    from optimum_dpruner.data.calibration import iter_texts, load_texts

    train = list(iter_texts(load_texts("builtin:medical", split="train")))
    test = list(iter_texts(load_texts("builtin:medical", split="test")))
    report = ngram_overlap(train, test)
    assert report.documents == 300 and report.clean and report.max_fraction < 0.05
