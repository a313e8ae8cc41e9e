"""Calibration data: load texts from many sources, tokenise, and cut fixed-length sequences from the seed.

Sources accepted everywhere a dataset is expected:
- a `datasets.Dataset` or `datasets.IterableDataset`;
- a list of strings;
- `"builtin:<name>"` for a bundled corpus (see `BUILTIN_DATASETS`), e.g. `"builtin:medical"`;
- a local file or folder (json, jsonl, txt, csv, parquet, optionally gzipped) or a hub id, read with
  `datasets.load_dataset`.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterable, Iterator
from typing import Any

import torch

from ..errors import ConfigError, DataError, DPrunerWarning, describe_error

__all__ = [
    "BUILTIN_DATASETS",
    "builtin_path",
    "load_texts",
    "iter_texts",
    "calibration_samples",
    "max_sequence_length",
    "tokenizer_adds_bos",
    "window_bos_id",
    "check_seq_len",
    "check_data_source",
]

logger = logging.getLogger(__name__)

_DATA_DIR = os.path.dirname(os.path.abspath(__file__))

#: Bundled corpora (see `optimum_dpruner/data/README.md` for sources and licences): name -> (train file, test file).
BUILTIN_DATASETS: dict[str, tuple[str, str]] = {
    "general": ("general_train.jsonl.gz", "general_test.jsonl.gz"),
    "medical": ("medical_train.jsonl.gz", "medical_test.jsonl.gz"),
    "legal": ("legal_train.jsonl.gz", "legal_test.jsonl.gz"),
}

_BUILDERS = {
    ".json": "json",
    ".jsonl": "json",
    ".txt": "text",
    ".text": "text",
    ".csv": "csv",
    ".parquet": "parquet",
}


def builtin_path(name: str, split: str = "train") -> str:
    """Path of a bundled corpus file (`split` is `"train"` for calibration, `"test"` for evaluation)."""
    if name not in BUILTIN_DATASETS:
        raise DataError(f"builtin dataset {name!r} does not exist; choose one of {', '.join(BUILTIN_DATASETS)}.")
    if split not in ("train", "test"):
        raise DataError(f"split={split!r} must be 'train' or 'test'.")
    return bundled_path(BUILTIN_DATASETS[name][split == "test"])


def bundled_path(filename: str) -> str:
    """Path of a file shipped in the package's `data/` folder (corpora and task items)."""
    return os.path.join(_DATA_DIR, filename)


def _builder_for(path: str) -> str | None:
    stem = path[:-3] if path.endswith(".gz") else path
    return _BUILDERS.get(os.path.splitext(stem)[1].lower())


_MODEL_FILES = (".safetensors", ".bin", ".gguf", ".pt", ".pth")
_SHOWN = 3


def _data_files(folder: str) -> dict[str, list[str]]:
    """The data files under `folder` that `datasets` would read, by kind (`json`, `text`, `csv`, `parquet`).

    Hidden files and folders (`.name`) and `__name` folders are skipped, as `datasets` does; files of other
    extensions (README.md, LICENSE) are not data."""
    kinds: dict[str, list[str]] = {}
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith((".", "__")))
        for name in sorted(files):
            builder = None if name.startswith(".") else _builder_for(name)
            if builder is not None:
                kinds.setdefault(builder, []).append(os.path.relpath(os.path.join(root, name), folder))
    return kinds


def _listing(names: list[str]) -> str:
    return ", ".join(names[:_SHOWN]) + (f" and {len(names) - _SHOWN} more" if len(names) > _SHOWN else "")


def check_data_source(source: Any) -> None:
    """`DataError` for a local path that cannot be calibration data, found without reading it.

    A folder is read by `datasets` as one kind of file (the most common extension wins and the others are skipped
    in silence), so a folder holding several kinds (`data.jsonl` beside `notes.txt`) is refused rather than
    guessed: whichever kind were picked, texts the user did not mean (a licence, notes) could end up in the
    calibration set. A model folder (`config.json` beside weights), a file of an unknown format and an empty file
    are refused too. Anything else (a `Dataset`, a list, a Hub id, `builtin:<name>`) passes unchecked.
    """
    if not isinstance(source, (str, os.PathLike)):
        return
    path = os.path.expanduser(os.fspath(source))
    if os.path.isfile(path):
        if _builder_for(path) is None:
            raise DataError(f"cannot tell the format of {path!r}; use .json, .jsonl, .txt, .csv or .parquet.")
        if os.path.getsize(path) == 0:
            raise DataError(f"the file {path!r} is empty; pass a file with at least one text.")
        return
    if not os.path.isdir(path):
        if os.fspath(source).startswith("builtin:") or "://" in os.fspath(source):
            return
        if _builder_for(path) is not None or path.startswith((".", os.sep)) or path.count("/") > 1:  # never a Hub id
            raise DataError(
                f"{os.fspath(source)!r} does not exist (nothing at {os.path.abspath(path)!r}); check the path, or pass "
                "a Hub dataset id ('name' or 'owner/name') or 'builtin:<name>'."
            )
        return
    entries = os.listdir(path)
    weights = sorted(e for e in entries if e.endswith(_MODEL_FILES))
    if "config.json" in entries and weights:
        raise DataError(
            f"the folder {path!r} holds a model (config.json, {_listing(weights)}), not calibration texts; pass a data "
            "file or folder (.jsonl, .txt, .csv, .parquet), a Hub dataset id or 'builtin:<name>'."
        )
    kinds = _data_files(path)
    if len(kinds) > 1:
        found = "; ".join(f"{kind}: {_listing(files)}" for kind, files in sorted(kinds.items()))
        example = os.path.join(path, sorted(kinds.items())[0][1][0])
        raise DataError(
            f"the folder {path!r} holds data files of {len(kinds)} kinds ({found}), and a folder is read as one kind "
            f"only: pass the file you mean (e.g. {example!r}), or a folder holding one kind of file."
        )


def load_texts(source: Any, split: str = "train"):
    """Open `source` as a `datasets.Dataset`/`IterableDataset` or a list of strings (see module doc)."""
    import datasets

    if isinstance(source, (datasets.Dataset, datasets.IterableDataset)):
        return source
    if isinstance(source, (list, tuple)):
        if not all(isinstance(t, str) for t in source):
            raise DataError("a list passed as a dataset must hold strings only.")
        return list(source)
    if not isinstance(source, (str, os.PathLike)):
        raise DataError(
            f"dataset of type {type(source).__name__} is not supported; pass a datasets.Dataset, a list of strings, "
            "a 'builtin:<name>' id, a file, a folder or a hub id."
        )
    source = os.fspath(source)
    if not source.strip():
        raise DataError("an empty string is not a dataset; pass a file, a folder, a hub id or 'builtin:<name>'.")
    if source.startswith("builtin:"):
        source = builtin_path(source.split(":", 1)[1], split)
    if os.path.isfile(source):
        return _load_file(source)
    check_data_source(source)
    if os.path.isdir(source):
        files = _data_files(source)
        logger.info("reading %s: %s", source, ", ".join(f for names in files.values() for f in names))
    try:
        return datasets.load_dataset(source, split=split)
    except Exception as e:  # datasets raises many types for a missing dataset
        where = "" if os.path.exists(source) else f"nothing at {os.path.abspath(source)!r}, and "
        raise DataError(
            f"could not load dataset {source!r} ({where}as a Hub dataset: {describe_error(e)}); check the path, or the "
            "Hub id and your connection."
        ) from e


def _load_file(path: str):
    """A local data file as a `datasets.Dataset`; `DataError` naming the file when it is empty or unreadable."""
    import datasets

    builder = _builder_for(path)
    if builder is None:
        raise DataError(f"cannot tell the format of {path!r}; use .json, .jsonl, .txt, .csv or .parquet.")
    if os.path.getsize(path) == 0:
        raise DataError(f"the file {path!r} is empty; pass a file with at least one text.")
    if builder != "parquet":
        _check_utf8(path)
    try:
        return datasets.load_dataset(builder, data_files=path, split="train")
    except Exception as e:  # datasets raises StopIteration, ArrowInvalid, DatasetGenerationError... for a bad file
        raise DataError(
            f"the file {path!r} could not be read as {builder} ({describe_error(e)}); check that it is complete and "
            "well formed."
        ) from e


def _check_utf8(path: str) -> None:
    """`DataError` naming the file and the byte when a text file is not UTF-8 (pyarrow reads a latin-1 jsonl
    without complaint, and the `UnicodeDecodeError` came out of the first row read, naming nothing)."""
    import codecs
    import gzip

    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    with (gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb")) as f:
        while chunk := f.read(1 << 20):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as e:
                raise DataError(
                    f"the file {path!r} is not UTF-8 text (byte {offset + e.start} is 0x{chunk[e.start]:02x}); "
                    "re-encode it as UTF-8, e.g. iconv -f latin1 -t utf-8."
                ) from None
            offset += len(chunk)


def iter_texts(dataset, text_column: str = "text", seed: int | None = None) -> Iterator[str]:
    """Yield the texts of `dataset`; a `Dataset` or list is visited in a seeded random order when `seed` is given."""
    import datasets

    if isinstance(dataset, list):
        order = _permutation(len(dataset), seed)
        if not dataset:
            raise DataError("the dataset is empty; pass at least one text.")
        yield from (dataset[i] for i in order)
        return
    columns = dataset.column_names
    if columns is not None and text_column not in columns:
        raise DataError(
            f"text_column={text_column!r} is not in the dataset; its columns are {', '.join(columns)}. "
            "Pass text_column=<one of them>."
        )
    if isinstance(dataset, datasets.Dataset):
        if len(dataset) == 0:
            raise DataError("the dataset is empty; pass at least one text.")
        for i in _permutation(len(dataset), seed):
            yield dataset[int(i)][text_column]
        return
    any_row = False
    for row in dataset:  # IterableDataset: visited in its own order
        any_row = True
        if text_column not in row:
            raise DataError(
                f"text_column={text_column!r} is not in the dataset; its columns are {', '.join(row)}. "
                "Pass text_column=<one of them>."
            )
        yield row[text_column]
    if not any_row:
        raise DataError("the dataset is empty; pass at least one text.")


def _permutation(n: int, seed: int | None) -> Iterable[int]:
    if seed is None:
        return range(n)
    generator = torch.Generator().manual_seed(seed)
    return torch.randperm(n, generator=generator).tolist()


def max_sequence_length(model_config) -> int | None:
    """The longest sequence the model accepts, from its config (`None` when the config does not say)."""
    for key in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
        value = getattr(model_config, key, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


_BOS_PROBE = "Hello world"


def tokenizer_adds_bos(tokenizer) -> bool:
    """Whether `tokenizer` puts its BOS token before a single encoded text (`tokenizer(text)`).

    Asked of the encoding itself, not of an `add_bos_token` attribute: a transformers 5 tokenizer built from a
    `tokenizer.json` whose post-processor adds BOS (LLaMA-3 style) reports `add_bos_token=False`.
    """
    bos = tokenizer.bos_token_id
    if bos is None:
        return False
    plain = tokenizer(_BOS_PROBE, add_special_tokens=False)["input_ids"]
    full = tokenizer(_BOS_PROBE)["input_ids"]
    return len(full) > len(plain) and full[0] == bos and full[1 : len(plain) + 1] == plain


def window_bos_id(tokenizer, add_bos: str | bool = "auto") -> int | None:
    """The token id to put at the start of every calibration or perplexity window, or `None` for none.

    Args:
        tokenizer: the model's tokenizer.
        add_bos (`str` or `bool`, *optional*, defaults to `"auto"`): `"auto"` takes the tokenizer's BOS when
            `tokenizer_adds_bos(tokenizer)`, `True` always takes it, `False` never.

    Raises:
        `ConfigError`: `add_bos` is not `"auto"`, `True` or `False`; `DataError`: `add_bos=True` and the tokenizer
        has no BOS token.
    """
    if add_bos is False:
        return None
    if tokenizer is None:  # was an AttributeError on None.bos_token_id
        raise DataError("a tokenizer is needed to cut calibration data; pass tokenizer= to DPruner.from_pretrained.")
    if add_bos is True:
        if tokenizer.bos_token_id is None:
            raise DataError("add_bos=True but the tokenizer has no bos_token; set tokenizer.bos_token or pass add_bos='auto'.")
        return tokenizer.bos_token_id
    if add_bos == "auto":
        return tokenizer.bos_token_id if tokenizer_adds_bos(tokenizer) else None
    raise ConfigError(f"add_bos={add_bos!r} must be 'auto', True or False.")


def check_seq_len(seq_len: int, model_config) -> None:
    """`ConfigError` when `seq_len` exceeds the longest sequence `model_config` accepts (no check without a config)."""
    limit = max_sequence_length(model_config) if model_config is not None else None
    if limit is not None and seq_len > limit:
        raise ConfigError(f"seq_len={seq_len} exceeds the model's limit of {limit} tokens; lower seq_len.")


def calibration_samples(
    source: Any,
    tokenizer,
    num_samples: int,
    seq_len: int,
    seed: int = 0,
    text_column: str = "text",
    model_config=None,
    add_bos: str | bool = "auto",
) -> list[torch.Tensor]:
    """Cut `num_samples` sequences of `seq_len` tokens from `source`, deterministically from `seed`.

    The texts are visited in a seeded random order, each tokenised (no special tokens) and followed by the
    tokens of a blank line, and the stream is cut into consecutive windows until `num_samples` are filled.
    With a BOS token (see `window_bos_id`), each window is the BOS followed by `seq_len - 1` text tokens;
    without, `seq_len` text tokens. Fewer windows than asked gives a `DPrunerWarning`; not even one a `DataError`.

    Args:
        add_bos (`str` or `bool`, *optional*, defaults to `"auto"`): start every window with the tokenizer's BOS:
            `"auto"` when the tokenizer adds one to an encoded text, `True` always, `False` never.

    Returns:
        `list[torch.Tensor]`: `num_samples` (or fewer) tensors of shape `(1, seq_len)`, dtype long, on CPU.
    """
    if tokenizer is None:
        raise DataError("a tokenizer is needed to cut calibration data; pass tokenizer= to DPruner.from_pretrained.")
    check_seq_len(seq_len, model_config)
    bos = window_bos_id(tokenizer, add_bos)
    text_len = seq_len - (bos is not None)
    if text_len < 1:
        raise ConfigError(f"seq_len={seq_len} leaves no room for text after the BOS token; use seq_len >= 2 or add_bos=False.")
    dataset = load_texts(source)
    separator = tokenizer("\n\n", add_special_tokens=False)["input_ids"]
    needed = num_samples * text_len
    stream: list[int] = []
    skipped = 0
    for text in iter_texts(dataset, text_column, seed):
        if text is not None and not isinstance(text, str):  # was skipped in silence, then "the texts hold 0 tokens"
            raise DataError(
                f"text_column={text_column!r} holds {type(text).__name__} values (e.g. {str(text)[:40]!r}), not texts; "
                "pass text_column=<a column of strings>."
            )
        if text is None or not text.strip():
            skipped += 1
            continue
        stream.extend(tokenizer(text, add_special_tokens=False)["input_ids"])
        stream.extend(separator)
        if len(stream) >= needed:
            break
    count = len(stream) // text_len
    if count == 0:
        empty = f" ({skipped} empty or missing texts skipped)" if skipped else ""
        raise DataError(
            f"the texts hold {len(stream)} tokens{empty}, fewer than one sequence of seq_len={seq_len}; "
            "pass more text or lower seq_len."
        )
    if count < num_samples:
        warnings.warn(
            f"only {count} sequences of {seq_len} tokens could be cut ({len(stream)} tokens found); "
            f"using {count} instead of num_samples={num_samples}.",
            DPrunerWarning,
            stacklevel=2,
        )
    count = min(count, num_samples)
    ids = torch.tensor(stream[: count * text_len], dtype=torch.long).view(count, text_len)
    if bos is not None:
        ids = torch.cat([torch.full((count, 1), bos, dtype=torch.long), ids], dim=1)
    return list(ids.view(count, 1, seq_len).unbind(0))
