"""Saving and loading D-Pruner's importance scores (G and I) as safetensors.

With saved scores, re-extracting at another sparsity, pattern or granularity needs no new pass over data:
`DPruner.prune(importance=path)`.
"""

from __future__ import annotations

import hashlib
import json
import os

import torch
from safetensors.torch import save_file
from torch import nn

from ..errors import ConfigError
from ..runtime.offload import parameter_value
from ..models.files import open_safetensors

__all__ = ["save_importance", "load_importance", "importance_metadata", "weights_fingerprint", "IMPORTANCE_NAME"]

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


def _importance_file(path: str | os.PathLike) -> str:
    path = os.fspath(path)
    if os.path.isdir(path):
        path = os.path.join(path, IMPORTANCE_NAME)
    if not os.path.isfile(path):
        raise ConfigError(f"importance={path!r} does not exist; pass the file or folder written by save_importance.")
    return path


def load_importance(path: str | os.PathLike, device: str | torch.device = "cpu") -> dict[str, dict[str, torch.Tensor]]:
    """Read scores written by `save_importance` (a file, or a folder holding `IMPORTANCE_NAME`).

    Raises:
        `ConfigError`: no such file; `CheckpointError`: the file is truncated or corrupt.
    """
    out: dict[str, dict[str, torch.Tensor]] = {kind: {} for kind in _KINDS}
    with open_safetensors(_importance_file(path)) as f:
        for key in f.keys():
            kind, name = key.split("/", 1)
            out[kind][name] = f.get_tensor(key).to(device)
    return out


def importance_metadata(path: str | os.PathLike) -> dict:
    """The metadata `save_importance` stored with the scores (`config`, `model_fingerprint`); `{}` when there is none."""
    with open_safetensors(_importance_file(path)) as f:
        text = (f.metadata() or {}).get("dpruner", "{}")
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def weights_fingerprint(targets: dict[str, nn.Linear], samples: int = 1024) -> str:
    """A SHA-256 over `samples` evenly spaced entries of every target weight (names and shapes included).

    It tells scores computed on one model from another of the same shapes. Entries are rounded to bfloat16 first,
    so that the same checkpoint loaded in float32, bfloat16 or float16 has the same fingerprint.
    """
    digest = hashlib.sha256()
    for name in sorted(targets):
        weight = parameter_value(targets[name]).reshape(-1)
        index = torch.linspace(0, weight.numel() - 1, min(samples, weight.numel())).round().long()
        picked = weight[index.to(weight.device)].detach().to("cpu", torch.bfloat16).view(torch.int16)
        digest.update(f"{name}:{tuple(targets[name].weight.shape)}:".encode())
        digest.update(picked.numpy().tobytes())
    return digest.hexdigest()
