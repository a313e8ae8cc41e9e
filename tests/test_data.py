import warnings

import datasets
import pytest
import torch

from optimum_dpruner import ConfigError, DataError, DPrunerWarning
from optimum_dpruner.data import builtin_path, calibration_samples, load_texts


def _texts(n=40):
    return [f"Document number {i} talks about topic {i % 7} at some length, with several words." * 3 for i in range(n)]


def test_same_seed_same_samples_and_other_seed_differs(tokenizer):
    a = calibration_samples(_texts(), tokenizer, 4, 32, seed=0)
    b = calibration_samples(_texts(), tokenizer, 4, 32, seed=0)
    c = calibration_samples(_texts(), tokenizer, 4, 32, seed=1)
    assert len(a) == 4 and all(s.shape == (1, 32) and s.dtype == torch.long for s in a)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not all(torch.equal(x, y) for x, y in zip(a, c))


def test_builtin_bundles_exist_and_load(tokenizer):
    for name in ("general", "medical", "legal"):
        for split in ("train", "test"):
            assert len(load_texts(builtin_path(name, split))) > 10
    samples = calibration_samples("builtin:medical", tokenizer, 2, 128, seed=0)
    assert len(samples) == 2


@pytest.mark.parametrize("fmt", ["jsonl", "txt", "csv", "parquet"])
def test_local_files(tmp_path, tokenizer, fmt):
    texts = _texts(10)
    path = tmp_path / f"data.{fmt}"
    if fmt == "txt":
        path.write_text("\n".join(texts))
    else:
        ds = datasets.Dataset.from_dict({"text": texts})
        {"jsonl": ds.to_json, "csv": ds.to_csv, "parquet": ds.to_parquet}[fmt](str(path))
    assert len(calibration_samples(str(path), tokenizer, 2, 32, seed=0)) == 2


def test_dataset_and_iterable_dataset_and_text_column(tokenizer):
    ds = datasets.Dataset.from_dict({"body": _texts()})
    a = calibration_samples(ds, tokenizer, 2, 32, text_column="body")
    b = calibration_samples(ds.to_iterable_dataset(), tokenizer, 2, 32, text_column="body")
    assert len(a) == len(b) == 2


def test_missing_column_lists_columns(tokenizer):
    ds = datasets.Dataset.from_dict({"body": ["x"], "title": ["y"]})
    with pytest.raises(DataError, match="its columns are body, title"):
        calibration_samples(ds, tokenizer, 1, 8)


def test_empty_dataset(tokenizer):
    with pytest.raises(DataError, match="empty"):
        calibration_samples(datasets.Dataset.from_dict({"text": []}), tokenizer, 1, 8)
    with pytest.raises(DataError, match="empty"):
        calibration_samples([], tokenizer, 1, 8)


def test_too_short_says_how_many_tokens(tokenizer):
    with pytest.raises(DataError, match=r"hold \d+ tokens, fewer than one sequence of seq_len=512"):
        calibration_samples(["just a few words"], tokenizer, 1, 512)


def test_fewer_samples_than_asked_warns(tokenizer):
    with pytest.warns(DPrunerWarning, match=r"only 4 sequences of 32 tokens could be cut \(156 tokens found\)"):
        samples = calibration_samples(_texts(3), tokenizer, 50, 32, seed=0)
    assert len(samples) == 4


def test_seq_len_above_model_limit(tokenizer, tiny_llama):
    with pytest.raises(ConfigError, match="exceeds the model's limit of 512"):
        calibration_samples(_texts(), tokenizer, 1, 1024, model_config=tiny_llama.config)


def test_unknown_builtin_and_bad_type(tokenizer):
    with pytest.raises(DataError, match="general, medical, legal"):
        calibration_samples("builtin:finance", tokenizer, 1, 8)
    with pytest.raises(DataError, match="not supported"):
        calibration_samples(42, tokenizer, 1, 8)


def test_empty_or_broken_file_is_named(tmp_path, tokenizer):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(DataError, match=r"the file '.*empty.jsonl' is empty"):
        calibration_samples(str(empty), tokenizer, 1, 8)
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"text": "fine"}\n{"text": "cut in the midd')
    with pytest.raises(DataError, match=r"the file '.*broken.jsonl' could not be read as json \(.+\); check that it is complete"):
        calibration_samples(str(broken), tokenizer, 1, 8)
    with pytest.raises(DataError, match="an empty string is not a dataset"):
        load_texts("  ")
