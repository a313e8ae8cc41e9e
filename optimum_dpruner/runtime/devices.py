"""Whether a device name given by the user can be used on this machine: the one check behind `--device`,
`execution_device` and any other argument that names a device."""

from __future__ import annotations

import torch

from ..errors import ConfigError

__all__ = ["check_device", "default_device"]


def check_device(
    device: str | torch.device, argument: str = "device", fix: str = "use 'cpu' or a device this machine has."
) -> torch.device:
    """`device` as a `torch.device`, checked to exist here.

    Args:
        device (`str` or `torch.device`): e.g. `"cpu"`, `"cuda"`, `"cuda:1"`, `"mps"`.
        argument (`str`, *optional*, defaults to `"device"`): the argument named in errors.
        fix (`str`, *optional*): what to do instead, appended to the error when the device is missing here.

    Returns:
        `torch.device`: the parsed device (index as given).

    Raises:
        `ConfigError`: `device` is not a device name, names a backend this machine lacks, or an index past the
            devices it has.
    """
    try:
        parsed = torch.device(device)
    except (RuntimeError, ValueError, TypeError):
        raise ConfigError(f"{argument}={device!r} is not a device name; use e.g. 'cpu', 'cuda' or 'cuda:1'.") from None
    if parsed.type == "cpu":
        return parsed
    backend = getattr(torch, parsed.type, None)
    if backend is None or not hasattr(backend, "is_available") or not backend.is_available():
        raise ConfigError(f"{argument}={device!r}, but no {parsed.type} device is available here; {fix}")
    count = backend.device_count() if hasattr(backend, "device_count") else None
    if parsed.index is not None and count is not None and parsed.index >= count:
        raise ConfigError(
            f"{argument}={device!r}, but this machine has {count} {parsed.type} device(s) (0 to {count - 1}); {fix}"
        )
    return parsed


def default_device() -> str:
    """The accelerator of this machine (`"cuda"`, `"mps"`, `"xpu"`...) when torch sees one, else `"cpu"`: the default
    of `--device`."""
    accelerator = getattr(torch, "accelerator", None)
    if accelerator is not None and accelerator.is_available():
        current = accelerator.current_accelerator()
        if current is not None:
            return current.type
    for name in ("cuda", "mps", "xpu"):
        backend = getattr(torch, name, None)
        if backend is not None and hasattr(backend, "is_available") and backend.is_available():
            return name
    return "cpu"
