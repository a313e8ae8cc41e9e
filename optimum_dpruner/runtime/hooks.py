"""`HookManager`: the only place that registers PyTorch hooks.

Statistics are gathered with forward (pre-)hooks on modules and post-accumulate-grad hooks on parameters; the
manager records every handle and removes them all on exit, even when the work in between raises.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

__all__ = ["HookManager"]


class HookManager:
    """Registers hooks and removes them all on `__exit__`.

    The block walk's propagation pass runs after the `with` block that collected statistics, so it needs no muting.

    Example:
        ```python
        with HookManager() as hooks:
            hooks.add_forward_hook(linear, lambda module, args, output: stats.add_batch(args[0]))
            block(hidden_states)          # statistics collected
        # every hook is removed here
        ```
    """

    def __init__(self) -> None:
        self._handles: list[Any] = []

    def add_forward_pre_hook(self, module: nn.Module, fn: Callable[..., Any], with_kwargs: bool = False) -> None:
        self._handles.append(module.register_forward_pre_hook(fn, with_kwargs=with_kwargs))

    def add_forward_hook(self, module: nn.Module, fn: Callable[..., Any]) -> None:
        self._handles.append(module.register_forward_hook(fn))

    def add_post_accumulate_grad_hook(self, param: torch.Tensor, fn: Callable[[torch.Tensor], None]) -> None:
        self._handles.append(param.register_post_accumulate_grad_hook(fn))

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def __enter__(self) -> "HookManager":
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()
