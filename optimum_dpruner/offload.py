"""Where weights and statistics live while the block-by-block stages run.

A model too large for the compute device stays where it was loaded (CPU RAM) and each decoder block is moved
to the `execution_device` only while it is calibrated, pruned and run, then moved back (the same onload /
offload that accelerate's `cpu_offload_with_hook` does for whole models, here at the block boundaries the
pipeline already has). Everything outside the blocks (embeddings, rotary tables, final norm) is moved for the
capture pass only. Calibration activations and Hessians can be kept on CPU between uses as well
(`offload_activations`, `offload_hessians`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

__all__ = ["resolve_device", "module_device", "onloaded", "non_block_modules", "storage_device"]


def resolve_device(device: str | torch.device) -> torch.device:
    """`torch.device` with the index filled in (`"cuda"` -> `cuda:<current>`), so that devices compare equal."""
    device = torch.device(device)
    if device.index is None and device.type != "cpu" and hasattr(torch, device.type):
        backend = getattr(torch, device.type)
        if hasattr(backend, "current_device") and backend.is_available():
            return torch.device(device.type, backend.current_device())
    return device


def module_device(module: nn.Module) -> torch.device | None:
    """Device of the module's first parameter (or buffer); `None` for a module that holds neither."""
    for tensor in (*module.parameters(), *module.buffers()):
        return tensor.device
    return None


@contextlib.contextmanager
def onloaded(modules: nn.Module | list[nn.Module], device: torch.device) -> Iterator[None]:
    """Inside the block, `modules` are on `device`; afterwards each is back where it was (no-op when it is
    already on `device`). In-place weight writes made inside carry over: `Module.to` keeps the parameters."""
    modules = modules if isinstance(modules, list) else [modules]
    homes = [(m, module_device(m)) for m in modules]
    moved = [(m, home) for m, home in homes if home is not None and resolve_device(home) != device]
    for module, _ in moved:
        module.to(device)
    try:
        yield
    finally:
        for module, home in moved:
            module.to(home)


def non_block_modules(model: nn.Module, blocks: nn.ModuleList) -> list[nn.Module]:
    """The model's submodules that hold weights outside the decoder blocks (embeddings, norms, rotary tables,
    the head), as the largest subtrees that contain no block."""
    found: list[nn.Module] = []

    def walk(module: nn.Module) -> None:
        for child in module.children():
            if child is blocks:
                continue
            if any(sub is blocks for sub in child.modules()):
                walk(child)
            elif module_device(child) is not None:
                found.append(child)

    walk(model)
    return found


def storage_device(offload: bool, device: torch.device) -> torch.device:
    """CPU when `offload` is set, else `device`."""
    return torch.device("cpu") if offload else device
