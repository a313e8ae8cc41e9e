"""Saving pruned models: plain transformers checkpoints with sparsity metadata, written atomically.

The folder holds what `AutoModelForCausalLM.from_pretrained` needs (safetensors weights, `config.json`,
tokenizer files) plus `dpruner_config.json`. Sparsity metadata sits under the top-level `config.json` key
`dpruner_sparsity`, which transformers keeps through a load/save round trip and other loaders ignore
(never under `quantization_config`, which makes loaders look for a quantizer).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from typing import Any

from .configuration import CONFIG_NAME, DPrunerConfig
from .errors import ConfigError

__all__ = ["save_pruned", "SPARSITY_KEY", "library_versions", "sparsity_metadata"]

SPARSITY_KEY = "dpruner_sparsity"


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
        "method": config.method,
        "pattern": config.pattern,
        "granularity": config.granularity,
        "target_sparsity": config.sparsity,
        "global_sparsity": round(report.sparsity, 6),
        "model_sparsity": round(report.model_sparsity, 6),
        "targets": sorted(report.matrices),
        "per_matrix_sparsity": {n: round(m.sparsity, 6) for n, m in report.matrices.items()},
    }


def save_pruned(
    save_directory: str | os.PathLike,
    model,
    tokenizer,
    config: DPrunerConfig,
    report,
    overwrite: bool = False,
    max_shard_size: str | int = "5GB",
) -> str:
    """Write a pruned model to `save_directory` atomically (temporary sibling folder, then rename).

    Args:
        save_directory (`str`): the output folder. It must not exist unless `overwrite=True`.
        model (`PreTrainedModel`): the pruned model.
        tokenizer (*optional*): saved beside it when given.
        config (`DPrunerConfig`): the options used.
        report (`PruneReport`): what the run achieved (sparsity, calibration fingerprints).
        overwrite (`bool`, *optional*, defaults to `False`): replace an existing folder.
        max_shard_size (`str` or `int`, *optional*, defaults to `"5GB"`): passed to `save_pretrained`.

    Returns:
        `str`: the folder written.
    """
    target = os.path.abspath(os.fspath(save_directory))
    if os.path.exists(target) and not overwrite:
        raise ConfigError(f"save_directory={target!r} already exists; pass overwrite=True or choose another folder.")
    parent = os.path.dirname(target)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(target)}.tmp-", dir=parent)
    try:
        setattr(model.config, SPARSITY_KEY, sparsity_metadata(report, config))
        model.save_pretrained(tmp, max_shard_size=max_shard_size)
        if tokenizer is not None:
            tokenizer.save_pretrained(tmp)
        side_car = {
            "config": config.to_dict(),
            "library_versions": library_versions(),
            "calibration": report.extra.get("calibration", {}),
            "base_model": getattr(model.config, "_name_or_path", None) or getattr(model, "name_or_path", None),
        }
        with open(os.path.join(tmp, CONFIG_NAME), "w", encoding="utf-8") as f:
            json.dump(side_car, f, indent=2, sort_keys=True)
        if os.path.exists(target):
            old = tempfile.mkdtemp(prefix=f".{os.path.basename(target)}.old-", dir=parent)
            os.replace(target, os.path.join(old, "x"))
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target
