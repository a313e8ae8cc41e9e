import hashlib

import datasets
import pytest
import torch

from optimum_dpruner import ConfigError, DataError, DPrunerWarning
from bos_tokenizer import bos_tokenizer
from optimum_dpruner.data.calibration import builtin_path, calibration_samples, load_texts, tokenizer_adds_bos, window_bos_id


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


# ----------------------------------------------------------------------------------------------- BOS
def test_windows_start_with_bos_exactly_when_the_tokenizer_adds_one(tokenizer):
    adds = bos_tokenizer()
    assert adds.add_bos_token is False and tokenizer_adds_bos(adds)  # the attribute would say no: the encoding is asked
    assert not tokenizer_adds_bos(tokenizer) and not tokenizer_adds_bos(bos_tokenizer(adds_bos=False))
    for tok, bos in ((adds, adds.bos_token_id), (bos_tokenizer(adds_bos=False), None), (tokenizer, None)):
        windows = calibration_samples(_texts(), tok, 4, 32, seed=0)
        assert len(windows) == 4 and all(w.shape == (1, 32) for w in windows)
        first = {int(w[0, 0]) for w in windows}
        assert (first == {bos}) if bos is not None else (tok.bos_token_id not in first)
    # with a BOS, each window is the BOS and the next seq_len - 1 tokens of the same text stream
    with_bos = calibration_samples(_texts(), adds, 4, 32, seed=0)
    text_only = calibration_samples(_texts(), adds, 4, 31, seed=0, add_bos=False)
    for w, t in zip(with_bos, text_only):
        assert torch.equal(w[:, 1:], t) and adds.bos_token_id not in t
    # True forces the declared BOS on a tokenizer that adds none; False drops it from one that adds it
    forced = calibration_samples(_texts(), tokenizer, 2, 32, seed=0, add_bos=True)
    assert all(int(w[0, 0]) == tokenizer.bos_token_id for w in forced)
    dropped = calibration_samples(_texts(), adds, 4, 31, seed=0, add_bos=False)
    assert all(torch.equal(a, b) for a, b in zip(dropped, text_only))


# sha256 over the windows' int64 bytes, computed with calibration_samples of main at commit 7f24171 (before add_bos
# existed) on the SmolLM2 tokenizer: `calibration_samples(source, tokenizer, n, seq_len, seed=0)`
_SMOLLM2_WINDOWS_BEFORE_ADD_BOS = {
    ("builtin:general", 4, 64): "150945af933b90ff712c36396532c2237ed03143a7513bcace222430f82db2a1",
    ("builtin:medical", 3, 128): "2633bcf44f611d908dc005237ea038e21c28ba7a4bcca895e682397692a634c7",
}


@pytest.mark.parametrize("add_bos", ["auto", False])
def test_smollm2_windows_are_bit_identical_to_those_before_add_bos(tokenizer, add_bos):
    for (source, n, seq_len), expected in _SMOLLM2_WINDOWS_BEFORE_ADD_BOS.items():
        digest = hashlib.sha256()
        for w in calibration_samples(source, tokenizer, n, seq_len, seed=0, add_bos=add_bos):
            digest.update(w.numpy().tobytes())
        assert digest.hexdigest() == expected, source


def test_add_bos_errors_name_the_problem(tokenizer):
    with pytest.raises(ConfigError, match=r"seq_len=1 leaves no room for text after the BOS token"):
        calibration_samples(_texts(), bos_tokenizer(), 1, 1)
    assert len(calibration_samples(_texts(), tokenizer, 1, 1)) == 1  # no BOS: one text token is a window
    with pytest.raises(ConfigError, match=r"add_bos='yes' must be 'auto', True or False"):
        window_bos_id(tokenizer, "yes")
    with pytest.raises(DataError, match="add_bos=True but the tokenizer has no bos_token"):
        calibration_samples(_texts(), bos_tokenizer(adds_bos=False, bos_token=None), 1, 8, add_bos=True)
    assert window_bos_id(bos_tokenizer(adds_bos=False, bos_token=None), "auto") is None


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


def _folder(tmp_path, files: dict[str, str]):
    folder = tmp_path / "mydata"
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


def test_folder_of_mixed_kinds_is_refused_naming_the_kinds(tmp_path, tokenizer):
    """Issue 31 bad #1: datasets reads a folder by its most common extension, so the jsonl was silently skipped
    and the calibration windows came from notes.txt and LICENSE.txt. Refused, before anything is read."""
    rows = "".join(f'{{"text": "{t}"}}\n' for t in _texts(10))
    folder = _folder(tmp_path, {"data.jsonl": rows, "notes.txt": "my notes", "LICENSE.txt": "MIT licence"})
    before = {p: p.read_bytes() for p in folder.iterdir()}
    expected = (r"^general_ds='.*mydata': the folder '.*mydata' holds data files of 2 kinds \(json: data.jsonl; text: "
                r"LICENSE.txt, notes.txt\), and a folder is read as one kind only: pass the file you mean \(e.g. "
                r"'.*mydata/data.jsonl'\), or a folder holding one kind of file.$")
    from optimum_dpruner import DPruner, DPrunerConfig

    with pytest.raises(DataError, match=r"holds data files of 2 kinds \(json: data.jsonl; text: LICENSE.txt, notes.txt\)"):
        calibration_samples(str(folder), tokenizer, 1, 8)
    import transformers

    model = transformers.AutoModelForCausalLM.from_config(transformers.LlamaConfig(
        hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2, vocab_size=len(tokenizer)))
    weights = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(DataError, match=expected):
        DPruner(model, tokenizer, DPrunerConfig(method="wanda", num_samples=1, seq_len=8)).prune(str(folder), progress=False)
    assert all(torch.equal(a, b) for a, b in zip(weights, model.parameters()))  # nothing pruned
    assert {p: p.read_bytes() for p in folder.iterdir()} == before
    # one kind of file (the README is not data) is read as before
    (folder / "notes.txt").unlink()
    (folder / "LICENSE.txt").unlink()
    (folder / "README.md").write_text("# my data")
    assert len(calibration_samples(str(folder), tokenizer, 2, 16)) == 2


def test_missing_data_paths_and_model_folders_are_named(tmp_path, tokenizer, tiny_llama):
    """Issue 31 weak: a missing relative path was reported as a Hub failure; a model folder given as data was read
    as json files."""
    with pytest.raises(DataError, match=r"^'mydata/train.jsonl' does not exist \(nothing at '.*mydata/train.jsonl'\); check the path"):
        load_texts("mydata/train.jsonl")
    with pytest.raises(DataError, match=r"^'./corpus' does not exist"):
        load_texts("./corpus")
    tiny_llama.save_pretrained(tmp_path / "model")
    tokenizer.save_pretrained(tmp_path / "model")
    with pytest.raises(DataError, match=r"the folder '.*model' holds a model \(config.json, model.safetensors\), not calibration texts"):
        load_texts(str(tmp_path / "model"))


def test_non_utf8_files_and_non_text_columns_are_named(tmp_path, tokenizer):
    """Issue 31: a latin-1 jsonl raised a bare UnicodeDecodeError from the first row read; a column of numbers was
    skipped text by text, then reported as "the texts hold 0 tokens"."""
    latin = tmp_path / "latin.jsonl"
    latin.write_bytes('{"text": "café crème"}\n'.encode("latin-1"))
    with pytest.raises(DataError, match=r"^the file '.*latin.jsonl' is not UTF-8 text \(byte 13 is 0xe9\); re-encode it as UTF-8"):
        calibration_samples(str(latin), tokenizer, 1, 4)
    numbers = datasets.Dataset.from_dict({"text": [1, 2, 3], "body": ["a b c d e f"] * 3})
    with pytest.raises(DataError, match=r"^text_column='text' holds int values \(e.g. '\d'\), not texts; pass text_column=<a column of strings>.$"):
        calibration_samples(numbers, tokenizer, 1, 4)
    with pytest.raises(DataError, match=r"the texts hold 0 tokens \(2 empty or missing texts skipped\)"):
        calibration_samples(datasets.Dataset.from_dict({"text": [None, " "]}), tokenizer, 1, 4)
