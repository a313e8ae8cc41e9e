"""The compressed storage of target matrices: a bitmask (1 bit per weight, set where the weight is kept) plus the
kept values, in `dpruner-compressed*.safetensors` files instead of `model*.safetensors`; and `read_weights`, which
reads either layout back as dense tensors.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator

import torch

from ..errors import ConfigError
from ..models.files import open_safetensors
from .metadata import FORMAT_BITMASK

__all__ = ["COMPRESSED_PREFIX", "pack_bitmask", "unpack_bitmask", "compress_weight", "decompress_weight", "read_weights",
           "compress_folder", "compressed_files", "DENSE_WEIGHTS", "DENSE_INDEX"]

COMPRESSED_PREFIX = "dpruner-compressed"
DENSE_WEIGHTS = re.compile(r"^model(-\d{5}-of-\d{5})?\.safetensors$")
DENSE_INDEX = "model.safetensors.index.json"
_SUFFIXES = ("bitmask", "values", "shape")
_BIT_WEIGHTS = torch.tensor([128, 64, 32, 16, 8, 4, 2, 1], dtype=torch.uint8)


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


def compress_folder(folder: str, targets: Iterable[str]) -> list[str]:
    """Rewrite the dense `model*.safetensors` of `folder` into `dpruner-compressed*.safetensors`; returns the files."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    target_keys = {f"{name}.weight" for name in targets}
    written = []
    for filename in sorted(f for f in os.listdir(folder) if DENSE_WEIGHTS.match(f)):
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
    index = os.path.join(folder, DENSE_INDEX)
    if os.path.exists(index):
        os.remove(index)
    return written


def compressed_files(folder: str) -> list[str]:
    return sorted(f for f in os.listdir(folder) if f.startswith(COMPRESSED_PREFIX) and f.endswith(".safetensors"))


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
    compressed = compressed_files(folder)
    files = compressed or sorted(f for f in os.listdir(folder) if DENSE_WEIGHTS.match(f))
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
