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

from ..errors import CheckpointError, ConfigError
from ..runtime.offload import parameter_value
from ..models.files import open_safetensors

__all__ = [
    "save_importance",
    "check_importance_target",
    "load_importance",
    "importance_metadata",
    "weights_fingerprint",
    "IMPORTANCE_NAME",
]

IMPORTANCE_NAME = "dpruner_importance.safetensors"
_KINDS = ("G", "I")


def _target_file(path: str) -> str:
    """The file `save_importance` writes for `path`: `path` itself when it ends in `.safetensors` and is no folder,
    else `IMPORTANCE_NAME` inside it."""
    path = os.path.abspath(os.path.expanduser(path))
    if os.path.isdir(path) or not path.endswith(".safetensors"):
        return os.path.join(path, IMPORTANCE_NAME)
    return path


def _is_scores_file(path: str) -> bool:
    """Whether `path` is a safetensors file that `save_importance` wrote (its metadata and its G/ and I/ keys)."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(path, framework="pt") as f:
            keys, metadata = list(f.keys()), f.metadata() or {}
    except (SafetensorError, OSError, ValueError):
        return False
    return "dpruner" in metadata and all(k.split("/", 1)[0] in _KINDS and "/" in k for k in keys)


def _inside(folder: str, path: str) -> bool:
    folder, path = os.path.realpath(folder), os.path.realpath(path)
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def check_importance_target(
    path: str | os.PathLike,
    overwrite: bool = False,
    *,
    protected: dict[str, str] | None = None,
    argument: str = "save_importance",
    overwrite_hint: str = "overwrite=True",
) -> str:
    """Check, before any work, that scores may be written at `path`; return the file they will go to.

    Refused: a path inside a protected folder (the model being pruned, the checkpoint being saved) or inside any
    model folder (one holding a `config.json`); an existing file that `save_importance` did not write (model
    weights, anything else), whatever `overwrite` says; an earlier scores file unless `overwrite`; a path that is
    an existing file not ending in `.safetensors`; a place that cannot be created.

    Args:
        path (`str`): what `save_importance` is given (a `.safetensors` file, or a folder).
        overwrite (`bool`, *optional*, defaults to `False`): whether an earlier scores file may be replaced.
        protected (`dict[str, str]`, *optional*): folder -> what it is (e.g. `{"./tiny": "the model being pruned"}`).
        argument (`str`, *optional*): the argument named in errors.
        overwrite_hint (`str`, *optional*): how the caller allows a replacement (`--overwrite` on the CLI).

    Raises:
        `ConfigError`: the scores may not be written there.
    """
    from .folders import check_creatable

    given = os.fspath(path)
    expanded = os.path.abspath(os.path.expanduser(given))
    if os.path.isfile(expanded) and not expanded.endswith(".safetensors"):
        raise ConfigError(
            f"{argument}={given!r} is an existing file, not a .safetensors file or a folder; choose a new path ending "
            "in .safetensors, or a folder."
        )
    target = _target_file(given)
    for folder, what in (protected or {}).items():
        if folder and _inside(folder, target):
            raise ConfigError(
                f"{argument}={given!r} is inside {what} ({folder}); write the scores outside it, e.g. "
                f"{os.path.join(os.path.dirname(os.path.abspath(folder)), IMPORTANCE_NAME)!r}."
            )
    parent = os.path.dirname(target)
    if os.path.isfile(os.path.join(parent, "config.json")):
        raise ConfigError(
            f"{argument}={given!r} is inside the model folder {parent!r} (it holds config.json); scores are never "
            "written into a model or a checkpoint: choose a path outside it."
        )
    if os.path.lexists(target):
        if os.path.isdir(target) or not _is_scores_file(target):
            raise ConfigError(
                f"{argument}={given!r}: {target!r} exists and is not a scores file written by optimum-dpruner; it is "
                "never replaced: choose another path."
            )
        if not overwrite:
            raise ConfigError(
                f"{argument}={given!r}: {target!r} already holds importance scores; pass {overwrite_hint} to replace "
                "them, or choose another path."
            )
    check_creatable(target, argument)
    return target


def save_importance(
    path: str | os.PathLike,
    importance: dict[str, dict[str, torch.Tensor]],
    metadata: dict | None = None,
    overwrite: bool = False,
    *,
    protected: dict[str, str] | None = None,
) -> str:
    """Write `{"G": {name: tensor}, "I": {name: tensor}}` to `path` (a file, or a folder that gets `IMPORTANCE_NAME`).

    The write goes to a temporary file renamed into place, so a crash never leaves a truncated file. Nothing but an
    earlier scores file is ever replaced, and that only with `overwrite=True` (see `check_importance_target`).

    Args:
        overwrite (`bool`, *optional*, defaults to `False`): replace an earlier scores file at `path`.
        protected (`dict[str, str]`, *optional*): folders the scores must not go into, and what they are.

    Raises:
        `ConfigError`: `path` may not be written (see `check_importance_target`).
    """
    path = check_importance_target(path, overwrite, protected=protected)
    os.makedirs(os.path.dirname(path), exist_ok=True)
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
        `ConfigError`: no such file; `CheckpointError`: the file is truncated or corrupt, or holds tensors that are
        not scores (a model's weights).
    """
    out: dict[str, dict[str, torch.Tensor]] = {kind: {} for kind in _KINDS}
    file = _importance_file(path)
    with open_safetensors(file) as f:
        keys = list(f.keys())
        foreign = [k for k in keys if "/" not in k or k.split("/", 1)[0] not in _KINDS]
        if foreign or not keys:
            raise CheckpointError(
                f"importance={os.fspath(path)!r}: {file!r} is not a scores file written by save_importance "
                f"({f'it holds {len(foreign)} tensors outside G/ and I/, e.g. {foreign[0]!r}' if foreign else 'it holds no tensor'}); "
                "pass the file written by save_importance (--save-importance)."
            )
        for key in keys:
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
