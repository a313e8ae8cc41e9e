"""`HookManager`: the only place that registers PyTorch hooks.

Statistics are gathered with forward (pre-)hooks on modules and post-accumulate-grad hooks on parameters; the
manager records every handle and removes them all on exit, even when the work in between raises.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn

__all__ = ["HookManager"]


class HookManager:
    """Registers hooks, mutes them on demand (`disabled()`), and removes them all on `__exit__`.

    Example:
        ```python
        with HookManager() as hooks:
            hooks.add_forward_hook(linear, lambda module, args, output: stats.add_batch(args[0]))
            block(hidden_states)          # statistics collected
            with hooks.disabled():
                block(hidden_states)      # hooks muted
        # every hook is removed here
        ```
    """

    def __init__(self) -> None:
        self._handles: list[Any] = []
        self._enabled = True

    def _guard(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        def hook(*args: Any, **kwargs: Any) -> Any:
            if self._enabled:
                return fn(*args, **kwargs)
            return None

        return hook

    def add_forward_pre_hook(self, module: nn.Module, fn: Callable[..., Any], with_kwargs: bool = False) -> None:
        self._handles.append(module.register_forward_pre_hook(self._guard(fn), with_kwargs=with_kwargs))

    def add_forward_hook(self, module: nn.Module, fn: Callable[..., Any]) -> None:
        self._handles.append(module.register_forward_hook(self._guard(fn)))

    def add_post_accumulate_grad_hook(self, param: torch.Tensor, fn: Callable[[torch.Tensor], None]) -> None:
        self._handles.append(param.register_post_accumulate_grad_hook(self._guard(fn)))

    def add_grad_hook(self, tensor: torch.Tensor, fn: Callable[[torch.Tensor], torch.Tensor | None]) -> None:
        """`fn(grad)` may return a replacement gradient, before it is accumulated into `.grad` (muted: unchanged)."""
        self._handles.append(tensor.register_hook(fn))

    @contextlib.contextmanager
    def disabled(self) -> Iterator[None]:
        """Mute every hook of this manager inside the `with` block."""
        previous, self._enabled = self._enabled, False
        try:
            yield
        finally:
            self._enabled = previous

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def __enter__(self) -> "HookManager":
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()
