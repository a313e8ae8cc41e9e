"""Where weights and statistics live while the block-by-block stages run.

A model too large for the compute device stays where it was loaded (CPU RAM) and each decoder block is moved
to the `execution_device` only while it is calibrated, pruned and run, then moved back (the same onload /
offload that accelerate's `cpu_offload_with_hook` does for whole models, here at the block boundaries the
pipeline already has). Everything outside the blocks (embeddings, rotary tables, final norm) is moved for the
capture pass only. Calibration activations and Hessians can be kept on CPU between uses as well
(`offload_activations`, `offload_hessians`).

A model dispatched by accelerate with offloaded weights (`from_pretrained(..., device_map=..., offload_folder=...)`
with modules on `"disk"` or `"cpu"`, or `accelerate.disk_offload`) has `meta` parameters and an `AlignDevicesHook`
per module that loads them for each forward and drops them after. For such modules `onloaded` loads the weights
once through those hooks, keeps them while the block is processed (the hooks' offloading paused), and on exit
writes every weight that changed back where the hook reads it (`accelerate.utils.offload_weight` for disk, the
loader's RAM dict for CPU), so later forwards and `save_pretrained` see the pruned weights.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

from ..errors import ConfigError

__all__ = [
    "resolve_device",
    "module_device",
    "onloaded",
    "non_block_modules",
    "storage_device",
    "accelerate_offloaded",
    "offload_hook",
    "parameter_value",
    "writable",
]


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


def offload_hook(module: nn.Module):
    """The module's accelerate `AlignDevicesHook` that offloads its weights, or `None`."""
    hook = getattr(module, "_hf_hook", None)
    if hook is None:
        return None
    from accelerate.hooks import AlignDevicesHook, SequentialHook

    for h in hook.hooks if isinstance(hook, SequentialHook) else [hook]:
        if isinstance(h, AlignDevicesHook) and h.offload and h.weights_map is not None:
            return h
    return None


def accelerate_offloaded(module: nn.Module) -> bool:
    """Whether accelerate keeps some of the module's weights offloaded (on `meta` between forwards)."""
    return any(offload_hook(m) is not None for m in module.modules())


def parameter_value(module: nn.Module, name: str = "weight") -> torch.Tensor:
    """The value of one of the module's own parameters, read through accelerate's hook when it is offloaded."""
    param = getattr(module, name)
    hook = offload_hook(module)
    if hook is not None and param.device.type == "meta":
        return hook.weights_map[name]
    return param.detach()


def _store(hook, name: str, value: torch.Tensor) -> None:
    """Write `value` where `hook` loads the parameter `name` from."""
    from accelerate.utils import OffloadedWeightsLoader, PrefixedDataset, offload_weight

    weights_map = hook.weights_map
    if isinstance(weights_map, PrefixedDataset):
        loader, key = weights_map.dataset, weights_map.prefix + name
    else:
        loader, key = weights_map, name
    value = value.detach().to("cpu").contiguous()
    if isinstance(loader, OffloadedWeightsLoader) and key not in loader.state_dict:
        if loader.save_folder is None:
            raise ConfigError(
                "the model's weights are offloaded to disk without an offload folder to write pruned weights to; "
                "load it with offload_folder=... (from_pretrained) or use accelerate.disk_offload(model, folder)."
            )
        offload_weight(value, key, loader.save_folder, index=loader.index)
        if key not in loader.all_keys:
            loader.all_keys.append(key)
    elif isinstance(loader, OffloadedWeightsLoader):
        loader.state_dict[key] = value
    else:
        loader[key] = value


@contextlib.contextmanager
def _materialised(module: nn.Module, device: torch.device) -> Iterator[None]:
    """Accelerate-offloaded weights of `module` loaded on `device` for the block; changed ones written back."""
    from accelerate.utils import named_module_tensors

    hooked = [(m, h) for m in module.modules() if (h := offload_hook(m)) is not None]
    previous = [h.execution_device for _, h in hooked]
    for m, h in hooked:
        h.execution_device = device
        h.pre_forward(m)
        h.offload = False  # forwards inside neither reload nor drop the weights
    try:
        yield
    finally:
        for (m, h), home in zip(hooked, previous):
            h.offload = True
            for name, tensor in named_module_tensors(m, include_buffers=h.offload_buffers, recurse=h.place_submodules,
                                                     remove_non_persistent=True):
                if not torch.equal(tensor.detach().cpu(), h.weights_map[name].cpu()):
                    _store(h, name, tensor)
            h.post_forward(m, None)
            h.execution_device = home


@contextlib.contextmanager
def onloaded(modules: nn.Module | list[nn.Module], device: torch.device) -> Iterator[None]:
    """Inside the block, `modules` are on `device`; afterwards each is back where it was (no-op when it is
    already on `device`). In-place weight writes made inside carry over: `Module.to` keeps the parameters, and
    accelerate-offloaded weights that changed are written back (see the module doc)."""
    modules = modules if isinstance(modules, list) else [modules]
    offloaded = [accelerate_offloaded(m) for m in modules]
    homes = [(m, module_device(m)) for m, off in zip(modules, offloaded) if not off]
    moved = [(m, home) for m, home in homes if home is not None and resolve_device(home) != device]
    with contextlib.ExitStack() as stack:
        for module, off in zip(modules, offloaded):
            if off:
                stack.enter_context(_materialised(module, device))
        for module, _ in moved:
            module.to(device)
        try:
            yield
        finally:
            for module, home in moved:
                module.to(home)


def writable(module: nn.Module) -> contextlib.AbstractContextManager:
    """Inside, `module.weight.data` can be read and written where the module lives: an accelerate-offloaded
    module is loaded (on CPU) and its changes written back on exit; any other module is left as it is."""
    return onloaded(module, torch.device("cpu")) if accelerate_offloaded(module) else contextlib.nullcontext()


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
