"""Saving pruned models: plain transformers checkpoints with sparsity metadata, written atomically.

The folder holds what `AutoModelForCausalLM.from_pretrained` needs (safetensors weights, `config.json`,
tokenizer files) plus `dpruner_config.json`, a model card (`README.md`) and a per-layer sparsity plot. Sparsity
metadata sits under the top-level `config.json` key `dpruner_sparsity`, which transformers keeps through a
load/save round trip and other loaders ignore (never under `quantization_config`, which makes loaders look for a
quantizer).

With `compressed=True` the target matrices are stored as a bitmask (1 bit per weight, `True` where the weight is
kept) plus the kept values, in files named `dpruner-compressed*.safetensors` instead of `model*.safetensors`.
Plain transformers then refuses the folder (no `model.safetensors`) rather than loading random weights;
`load_pretrained` restores an ordinary dense model from it.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import torch

from .configuration import CONFIG_NAME, DPrunerConfig
from .errors import CheckpointError, ConfigError, describe_error
from .folders import MANIFEST_KEY, check_output_folder, replace_folder

__all__ = [
    "save_pruned",
    "load_pretrained",
    "read_weights",
    "read_sparsity_metadata",
    "read_json_file",
    "open_safetensors",
    "pack_bitmask",
    "unpack_bitmask",
    "compress_weight",
    "decompress_weight",
    "library_versions",
    "sparsity_metadata",
    "is_hub_id",
    "SPARSITY_KEY",
    "COMPRESSED_PREFIX",
    "FORMAT_DENSE",
    "FORMAT_BITMASK",
]

logger = logging.getLogger(__name__)

SPARSITY_KEY = "dpruner_sparsity"
COMPRESSED_PREFIX = "dpruner-compressed"
FORMAT_DENSE = "dense"
FORMAT_BITMASK = "bitmask"
_DENSE_WEIGHTS = re.compile(r"^model(-\d{5}-of-\d{5})?\.safetensors$")
_DENSE_INDEX = "model.safetensors.index.json"
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_SUFFIXES = ("bitmask", "values", "shape")
_BIT_WEIGHTS = torch.tensor([128, 64, 32, 16, 8, 4, 2, 1], dtype=torch.uint8)


def library_versions() -> dict[str, str]:
    """Versions of the libraries that shaped the result."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("optimum-dpruner", "torch", "transformers", "optimum", "datasets", "safetensors", "huggingface_hub"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out


def sparsity_metadata(report, config: DPrunerConfig) -> dict[str, Any]:
    """The `config.json` block describing the sparsity of a pruned model."""
    return {
        "format": FORMAT_DENSE,
        "method": config.method,
        "pattern": config.pattern,
        "granularity": config.granularity,
        "block_size": config.block_size,
        "target_sparsity": config.sparsity,
        "global_sparsity": round(report.sparsity, 6),
        "model_sparsity": round(report.model_sparsity, 6),
        "targets": sorted(report.matrices),
        "per_matrix_sparsity": {n: round(m.sparsity, 6) for n, m in report.matrices.items()},
    }


def is_hub_id(name: str) -> bool:
    """Whether `name` reads as a Hub repository id (`"namespace/name"`) and is not a local path."""
    return bool(_HUB_ID.match(name)) and not os.path.exists(name)


# ---------------------------------------------------------------------------------------------- bitmask format
def pack_bitmask(mask: torch.Tensor) -> torch.Tensor:
    """Pack a bool tensor into bytes, row-major, most significant bit first (like `numpy.packbits`)."""
    flat = mask.reshape(-1).to(torch.uint8)
    pad = (-flat.numel()) % 8
    if pad:
        flat = torch.cat([flat, flat.new_zeros(pad)])
    return (flat.reshape(-1, 8) * _BIT_WEIGHTS.to(flat.device)).sum(dim=1, dtype=torch.uint8)


def unpack_bitmask(packed: torch.Tensor, numel: int) -> torch.Tensor:
    """Inverse of `pack_bitmask`: a flat bool tensor of `numel` entries."""
    bits = packed.reshape(-1, 1) & _BIT_WEIGHTS.to(packed.device)
    return bits.ne(0).reshape(-1)[:numel]


def compress_weight(weight: torch.Tensor) -> dict[str, torch.Tensor]:
    """Split `weight` into `bitmask` (kept entries), `values` (the kept entries, same dtype) and `shape` (int64)."""
    kept = weight.ne(0)
    return {
        "bitmask": pack_bitmask(kept),
        "values": weight.reshape(-1)[kept.reshape(-1)].contiguous(),
        "shape": torch.tensor(list(weight.shape), dtype=torch.int64),
    }


def decompress_weight(bitmask: torch.Tensor, values: torch.Tensor, shape: torch.Tensor) -> torch.Tensor:
    """Rebuild the dense tensor written by `compress_weight`."""
    dims = [int(d) for d in shape.tolist()]
    numel = 1
    for d in dims:
        numel *= d
    kept = unpack_bitmask(bitmask, numel)
    if int(kept.sum()) != values.numel():
        raise ValueError(f"corrupt bitmask: {int(kept.sum())} kept entries but {values.numel()} values.")
    dense = values.new_zeros(numel)
    dense[kept] = values
    return dense.reshape(dims)


def _worth_compressing(tensor: torch.Tensor) -> bool:
    """Whether bitmask + values takes fewer bytes than the dense tensor."""
    kept = int(tensor.ne(0).sum())
    return kept * tensor.element_size() + (tensor.numel() + 7) // 8 + 8 * tensor.dim() < tensor.numel() * tensor.element_size()


def _compress_folder(folder: str, targets: Iterable[str]) -> list[str]:
    """Rewrite the dense `model*.safetensors` of `folder` into `dpruner-compressed*.safetensors`; returns the files."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    target_keys = {f"{name}.weight" for name in targets}
    written = []
    for filename in sorted(f for f in os.listdir(folder) if _DENSE_WEIGHTS.match(f)):
        path = os.path.join(folder, filename)
        out: dict[str, torch.Tensor] = {}
        with safe_open(path, framework="pt") as f:
            metadata = dict(f.metadata() or {})
            for key in f.keys():
                tensor = f.get_tensor(key)
                if key in target_keys and _worth_compressing(tensor):
                    out.update({f"{key}.{part}": t for part, t in compress_weight(tensor).items()})
                else:
                    out[key] = tensor
        new_name = COMPRESSED_PREFIX + filename[len("model") :]
        metadata.update({"format": "pt", "dpruner_format": FORMAT_BITMASK})
        save_file(out, os.path.join(folder, new_name), metadata=metadata)
        os.remove(path)
        written.append(new_name)
    index = os.path.join(folder, _DENSE_INDEX)
    if os.path.exists(index):
        os.remove(index)
    return written


def _compressed_files(folder: str) -> list[str]:
    return sorted(f for f in os.listdir(folder) if f.startswith(COMPRESSED_PREFIX) and f.endswith(".safetensors"))


def read_json_file(path: str) -> dict[str, Any]:
    """The JSON object in `path`; `CheckpointError` naming the file when it is not valid JSON or not an object."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except ValueError as e:  # JSONDecodeError, UnicodeDecodeError
        raise CheckpointError(f"{path!r} is not valid JSON ({describe_error(e)}); restore the file or save the model again.") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path!r} holds a JSON {type(data).__name__}, not an object; restore the file or save the model again.")
    return data


@contextmanager
def open_safetensors(path: str):
    """`safetensors.safe_open(path)`; `CheckpointError` naming the file when it is truncated or corrupt."""
    from safetensors import SafetensorError, safe_open

    try:
        handle = safe_open(path, framework="pt")
    except SafetensorError as e:
        raise CheckpointError(f"{path!r} is truncated or corrupt ({describe_error(e)}); download or save it again.") from None
    with handle as f:
        yield f


def read_sparsity_metadata(folder: str | os.PathLike) -> dict[str, Any] | None:
    """The `dpruner_sparsity` block of `folder/config.json`, or `None` when there is none.

    Raises:
        `ConfigError`: there is no `config.json`; `CheckpointError`: it is not a valid JSON object.
    """
    path = os.path.join(os.fspath(folder), "config.json")
    if not os.path.isfile(path):
        raise ConfigError(f"{path!r} does not exist; pass a folder written by save_pretrained.")
    return read_json_file(path).get(SPARSITY_KEY)


def read_weights(folder: str | os.PathLike, names: Iterable[str] | None = None) -> Iterator[tuple[str, torch.Tensor]]:
    """Yield `(key, dense tensor)` from the safetensors files of `folder`, dense or bitmask-compressed.

    Args:
        folder (`str`): a folder written by `save_pretrained` (with or without `compressed=True`).
        names (`Iterable[str]`, *optional*): the keys to read (e.g. `"model.layers.0.mlp.up_proj.weight"`);
            all keys when omitted. Tensors are read one at a time.

    Raises:
        `ConfigError`: the folder holds no safetensors weights.
    """
    folder = os.fspath(folder)
    compressed = _compressed_files(folder)
    files = compressed or sorted(f for f in os.listdir(folder) if _DENSE_WEIGHTS.match(f))
    if not files:
        raise ConfigError(f"{folder!r} holds no model*.safetensors nor {COMPRESSED_PREFIX}*.safetensors weights.")
    wanted = None if names is None else set(names)
    for filename in files:
        with open_safetensors(os.path.join(folder, filename)) as f:
            for key in f.keys():
                base, _, suffix = key.rpartition(".")
                if compressed and suffix in _SUFFIXES:
                    if suffix == "bitmask" and (wanted is None or base in wanted):
                        yield base, decompress_weight(*(f.get_tensor(f"{base}.{s}") for s in _SUFFIXES))
                elif wanted is None or key in wanted:
                    yield key, f.get_tensor(key)


# ---------------------------------------------------------------------------------------------- save / load
def _rewrite_json(path: str, update) -> None:
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    update(data)
    with open(path, "w", encoding="utf-8") as f:
        f.write(json.dumps(data, indent=2, sort_keys=True) + "\n")


def save_pruned(
    save_directory: str | os.PathLike,
    model,
    tokenizer,
    config: DPrunerConfig,
    report,
    overwrite: bool = False,
    max_shard_size: str | int = "5GB",
    *,
    compressed: bool = False,
    model_card: bool = True,
    base_model: str | None = None,
    license: str | None = None,
    evaluation: dict[str, dict[str, float]] | None = None,
) -> str:
    """Write a pruned model to `save_directory` atomically (temporary sibling folder, then rename).

    A process killed while saving leaves only a hidden `.<name>.tmp-*` folder beside the target, never a folder at
    the target path. With `overwrite=True` the old folder is swapped out only once the new one is complete, and
    only if it is empty or a checkpoint this library wrote with nothing else in it (never the current directory,
    a parent of it, or the folder the model was loaded from; see `optimum_dpruner.folders`). Whether the folder
    can be written, and its disk has room for the weights, is checked before anything is written.

    Args:
        save_directory (`str`): the output folder. It must not exist unless `overwrite=True`.
        model (`PreTrainedModel`): the pruned model.
        tokenizer (*optional*): saved beside it when given.
        config (`DPrunerConfig`): the options used.
        report (`PruneReport`): what the run achieved (sparsity, calibration fingerprints).
        overwrite (`bool`, *optional*, defaults to `False`): replace an existing folder written by this library.
        max_shard_size (`str` or `int`, *optional*, defaults to `"5GB"`): passed to `save_pretrained`.
        compressed (`bool`, *optional*, defaults to `False`): store target matrices as bitmask + values (smaller on
            disk; load with `optimum_dpruner.load_pretrained`, not with plain transformers).
        model_card (`bool`, *optional*, defaults to `True`): write `README.md` and the per-layer sparsity plot.
        base_model (`str`, *optional*): hub id of the unpruned model for the card; guessed from the model otherwise.
        license (`str`, *optional*): licence for the card; read from the base model's card otherwise.
        evaluation (`dict[str, dict[str, float]]`, *optional*): perplexities for the card,
            `{set name: {"dense": ppl, "pruned": ppl}}`; defaults to `report.extra["evaluation"]` when present.

    Returns:
        `str`: the folder written.

    Raises:
        `ConfigError`: `save_directory` exists and `overwrite` is `False`, may not be replaced, or cannot be written.
    """
    target = check_output_folder(
        save_directory, overwrite, protected=_model_sources(model), needed_bytes=_parameter_bytes(model)
    )
    parent = os.path.dirname(target)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(target)}.tmp-", dir=parent)
    try:
        metadata = sparsity_metadata(report, config)
        setattr(model.config, SPARSITY_KEY, metadata)
        model.save_pretrained(tmp, max_shard_size=max_shard_size)
        if compressed:
            files = _compress_folder(tmp, report.matrices)
            metadata = {**metadata, "format": FORMAT_BITMASK, "files": files}
            _rewrite_json(os.path.join(tmp, "config.json"), lambda data: data.update({SPARSITY_KEY: metadata}))
        if tokenizer is not None:
            tokenizer.save_pretrained(tmp)
        side_car = {
            "config": config.to_dict(),
            "format": metadata["format"],
            "library_versions": library_versions(),
            "calibration": report.extra.get("calibration", {}),
            "base_model": base_model
            or getattr(model.config, "_name_or_path", None)
            or getattr(model, "name_or_path", None),
        }
        if model_card:
            from .card import write_model_card

            card_info = write_model_card(
                tmp,
                model,
                metadata,
                side_car,
                base_model=base_model,
                license=license,
                evaluation=evaluation if evaluation is not None else report.extra.get("evaluation"),
                model_name=os.path.basename(target),
            )
            side_car["base_model"] = card_info.get("base_model") or side_car["base_model"]
        side_car[MANIFEST_KEY] = sorted({*os.listdir(tmp), CONFIG_NAME})  # what a later overwrite may delete
        with open(os.path.join(tmp, CONFIG_NAME), "w", encoding="utf-8") as f:
            json.dump(side_car, f, indent=2, sort_keys=True)
        replace_folder(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    logger.info("Saved the pruned model (%s format) to %s", metadata["format"], target)
    return target


def _model_sources(model) -> list[str]:
    """Local paths the model was loaded from (never to be replaced by a save)."""
    names = {getattr(model, "name_or_path", None), getattr(model.config, "_name_or_path", None)}
    return [n for n in names if isinstance(n, str) and n and os.path.exists(n)]


def _parameter_bytes(model) -> int:
    """Bytes of the model's parameters and buffers (tied weights once): about the size of its safetensors."""
    tensors = {id(t): t for t in [*model.parameters(), *model.buffers()]}
    return sum(t.numel() * t.element_size() for t in tensors.values())


def _model_class(config):
    """The causal-LM class named in `config.architectures` (written by `save_pretrained`)."""
    import transformers

    for name in getattr(config, "architectures", None) or []:
        cls = getattr(transformers, name, None)
        if cls is not None:
            return cls
    raise ConfigError(
        f"config.json names no transformers class in architectures={getattr(config, 'architectures', None)!r}; "
        "re-save the model with save_pretrained."
    )


def load_pretrained(
    path: str | os.PathLike,
    dtype: str | torch.dtype | None = None,
    device: str | torch.device | None = None,
    **load_kwargs: Any,
):
    """Load a folder written by `save_pretrained`, dense or compressed, as an ordinary transformers model.

    Args:
        path (`str`): the folder, or a hub id (`"namespace/name"`, downloaded with `snapshot_download`; `token`,
            `revision` and `cache_dir` in `load_kwargs` go there).
        dtype (`str` or `torch.dtype`, *optional*): dtype to load in; defaults to the dtype stored.
        device (`str` or `torch.device`, *optional*): device to move the model to.
        load_kwargs: passed to `AutoModelForCausalLM.from_pretrained`.

    Returns:
        `PreTrainedModel`: a dense model in eval mode (zeros in place). Its `dpruner_sparsity` metadata says
        `format: dense`, so that `model.save_pretrained` writes a consistent plain checkpoint.

    Raises:
        `ConfigError`: `path` is not a folder with `config.json` and weights.
    """
    from transformers import AutoConfig, AutoModelForCausalLM, GenerationConfig

    path = os.fspath(path)
    if is_hub_id(path):
        from huggingface_hub import snapshot_download

        hub_kwargs = {k: load_kwargs.pop(k) for k in ("token", "revision", "cache_dir") if k in load_kwargs}
        path = snapshot_download(path, **hub_kwargs)
    if not os.path.isfile(os.path.join(path, "config.json")):
        raise ConfigError(f"path={path!r} has no config.json; pass a folder written by save_pretrained or a hub id.")
    if not _compressed_files(path):
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype or "auto", **load_kwargs)
    else:
        config = AutoConfig.from_pretrained(path)
        state_dict = dict(read_weights(path))
        if dtype is None:
            dtype = next((t.dtype for t in state_dict.values() if t.is_floating_point()), None)
        model_cls = _model_class(config)
        model = model_cls.from_pretrained(None, config=config, state_dict=state_dict, dtype=dtype, **load_kwargs)
        if os.path.isfile(os.path.join(path, "generation_config.json")):
            model.generation_config = GenerationConfig.from_pretrained(path)
    metadata = getattr(model.config, SPARSITY_KEY, None)
    if isinstance(metadata, dict):
        setattr(model.config, SPARSITY_KEY, {k: v for k, v in {**metadata, "format": FORMAT_DENSE}.items() if k != "files"})
    if device is not None:
        model = model.to(device)
    return model.eval()
