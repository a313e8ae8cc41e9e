"""What a pruned checkpoint says about itself: the `config.json` sparsity block, library versions, and strict readers
of its JSON and safetensors files (a corrupt file is named in a `CheckpointError`). A leaf module: the writers
(`serialization`, `card`, `folders`) and readers (`verification`, `importance`) all import it.
"""

from __future__ import annotations

import json
import os
from typing import Any

from ..configuration import DPrunerConfig
from ..errors import CheckpointError, ConfigError, describe_error

__all__ = [
    "SPARSITY_KEY",
    "FORMAT_DENSE",
    "FORMAT_BITMASK",
    "library_versions",
    "sparsity_metadata",
    "read_json_file",
    "read_sparsity_metadata",
]

SPARSITY_KEY = "dpruner_sparsity"
FORMAT_DENSE = "dense"
FORMAT_BITMASK = "bitmask"


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


def read_sparsity_metadata(folder: str | os.PathLike) -> dict[str, Any] | None:
    """The `dpruner_sparsity` block of `folder/config.json`, or `None` when there is none.

    Raises:
        `ConfigError`: there is no `config.json`; `CheckpointError`: it is not a valid JSON object.
    """
    path = os.path.join(os.fspath(folder), "config.json")
    if not os.path.isfile(path):
        raise ConfigError(f"{path!r} does not exist; pass a folder written by save_pretrained.")
    return read_json_file(path).get(SPARSITY_KEY)
