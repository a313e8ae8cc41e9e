"""Saving and loading D-Pruner's importance scores (G and I) as safetensors.

With saved scores, re-extracting at another sparsity, pattern or granularity needs no new pass over data:
`DPruner.prune(importance=path)`.
"""

from __future__ import annotations

import json
import os

import torch
from safetensors.torch import load_file, save_file

from .errors import ConfigError

__all__ = ["save_importance", "load_importance", "IMPORTANCE_NAME"]

IMPORTANCE_NAME = "dpruner_importance.safetensors"
_KINDS = ("G", "I")


def save_importance(path: str | os.PathLike, importance: dict[str, dict[str, torch.Tensor]], metadata: dict | None = None) -> str:
    """Write `{"G": {name: tensor}, "I": {name: tensor}}` to `path` (a file, or a folder that gets `IMPORTANCE_NAME`).

    The write goes to a temporary file renamed into place, so a crash never leaves a truncated file.
    """
    path = os.fspath(path)
    if os.path.isdir(path) or not path.endswith(".safetensors"):
        os.makedirs(path, exist_ok=True)
        path = os.path.join(path, IMPORTANCE_NAME)
    tensors = {f"{kind}/{name}": t.detach().contiguous().cpu() for kind in _KINDS for name, t in importance.get(kind, {}).items()}
    tmp = path + ".tmp"
    save_file(tensors, tmp, metadata={"dpruner": json.dumps(metadata or {}, sort_keys=True)})
    os.replace(tmp, path)
    return path


def load_importance(path: str | os.PathLike, device: str | torch.device = "cpu") -> dict[str, dict[str, torch.Tensor]]:
    """Read scores written by `save_importance` (a file, or a folder holding `IMPORTANCE_NAME`)."""
    path = os.fspath(path)
    if os.path.isdir(path):
        path = os.path.join(path, IMPORTANCE_NAME)
    if not os.path.isfile(path):
        raise ConfigError(f"importance={path!r} does not exist; pass the file or folder written by save_importance.")
    out: dict[str, dict[str, torch.Tensor]] = {kind: {} for kind in _KINDS}
    for key, tensor in load_file(path, device=str(device)).items():
        kind, name = key.split("/", 1)
        out[kind][name] = tensor
    return out
