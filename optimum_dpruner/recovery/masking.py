"""The pruned positions of a model and what keeps them zero while it trains (full mode).

A mask is the set of pruned positions of a target linear (`weight == 0` when training starts), held as a bool
tensor that is `True` where the weight is pruned. `MaskKeeper` keeps them exact in a `transformers.Trainer`:

- a post-accumulate-grad hook on each target weight zeroes the pruned entries of `weight.grad` in place (`kept`) as
  soon as autograd has accumulated it, before DDP's reducer (a hook on the same accumulation node that runs after
  it) copies the gradient for the all-reduce; so clipping, the all-reduce and the optimizer only ever see masked gradients,
  and no masked copy of a layer-size gradient is allocated;
- after every optimizer step (`on_optimizer_step`) the pruned weights are set to zero again. With masked gradients
  AdamW (the Trainer's optimizer here) leaves a zero weight at zero on its own and its moments there stay exactly
  zero (decoupled weight decay scales zero; `0 / (sqrt(0) + eps)` is 0), so the re-zeroing is the guarantee, not a
  correction; the optimizer state gets no pass of its own (each pass over the weights costs memory bandwidth of
  the model's size, a step's largest overhead on a CPU). `MaskKeeper.apply(optimizer)` also zeroes the state, for
  use outside the Trainer's loop.

An N:M pattern stays valid because no pruned position can become non-zero.

Every mask of a recovery run is applied as a product with `kept(mask)` (1 where a weight is kept, 0 where pruned, one
byte an entry), never with `masked_fill`: on a CPU `masked_fill` with a bool mask runs 4-10x slower than the product
(`benchmarks/results/mask_ops.md`), and a full step applies two masks of the model's size. A product also carries a
NaN or inf at a pruned position through instead of writing 0 over it, so `FiniteGradients` stops the run on it.
"""

from __future__ import annotations

import fnmatch
import logging
from typing import Any

import torch
from torch import nn
from transformers import TrainerCallback

from ..checkpoint.metadata import SPARSITY_KEY
from ..checkpoint.verification import verify_sparsity
from ..errors import CheckpointError, NumericalError, UnsupportedModelError
from ..runtime.hooks import HookManager

__all__ = ["target_names", "capture_masks", "kept", "check_masks", "count_unmasked", "MaskKeeper", "FiniteGradients"]

logger = logging.getLogger(__name__)


def target_names(model: nn.Module) -> list[str]:
    """The pruned target linears of `model`: those its `dpruner_sparsity` metadata lists, else the default targets
    (every `nn.Linear` inside the decoder blocks)."""
    metadata = getattr(model.config, SPARSITY_KEY, None)
    if isinstance(metadata, dict) and metadata.get("targets"):
        return list(metadata["targets"])
    from ..configuration import DPrunerConfig
    from ..stages import iter_target_linears

    return list(iter_target_linears(model, DPrunerConfig()))


@torch.no_grad()
def capture_masks(model: nn.Module, names: list[str]) -> dict[str, torch.Tensor]:
    """`{name: weight == 0}` of each target linear (bool, on the weight's device)."""
    masks = {}
    for name in names:
        try:
            module = model.get_submodule(name)
        except AttributeError:
            raise UnsupportedModelError(f"target {name!r} of the sparsity metadata is not a module of {type(model).__name__}; "
                                        "pass the pruned model the metadata was written for.") from None
        masks[name] = module.weight.detach().eq(0)
    return masks


def kept(mask: torch.Tensor) -> torch.Tensor:
    """The multiplier of a mask (`True` where pruned): `1` where the weight is kept, `0` where it is pruned, as uint8
    (a product with it keeps the other operand's dtype)."""
    return mask.logical_not().view(torch.uint8)


def check_masks(model: nn.Module, masks: dict[str, torch.Tensor], allow_dense: bool = False) -> float:
    """Refuse a model that has nothing to keep or whose mask was lost; return the fraction of pruned target weights.

    Raises:
        `UnsupportedModelError`: no target weight is zero (not pruned) and `allow_dense` is `False`;
        `CheckpointError`: the `dpruner_sparsity` metadata records more zeros than the weights hold (the mask was
        lost, e.g. by fine-tuning or a LoRA merge that did not keep it).
    """
    zeros = sum(int(m.sum()) for m in masks.values())
    numel = sum(m.numel() for m in masks.values())
    sparsity = zeros / numel if numel else 0.0
    if isinstance(getattr(model.config, SPARSITY_KEY, None), dict):
        check = verify_sparsity(model)
        if not check.ok:
            raise CheckpointError(
                f"the model's mask was lost: {check.problems[0]} ({len(check.problems)} matrices differ from the "
                "dpruner_sparsity metadata); recover from the checkpoint the pruner saved, or prune again."
            )
    if zeros == 0 and not allow_dense:
        raise UnsupportedModelError(
            f"the {len(masks)} target matrices hold no zero weights: this model is not pruned, so recovery has no mask "
            "to keep; prune it first, or pass allow_dense=True to fine-tune it as it is."
        )
    return sparsity


@torch.no_grad()
def count_unmasked(model: nn.Module, masks: dict[str, torch.Tensor]) -> int:
    """Pruned positions that hold a non-zero weight (0 when the mask is intact)."""
    return sum(int(model.get_submodule(n).weight.detach()[m].ne(0).sum()) for n, m in masks.items())


def select(names: list[str], patterns: list[str] | None) -> list[str]:
    """The names matching any fnmatch pattern (all of them when `patterns` is `None`)."""
    if patterns is None:
        return list(names)
    return [n for n in names if any(fnmatch.fnmatchcase(n, p) for p in patterns)]


class MaskKeeper(TrainerCallback):
    """Keeps every pruned weight of a full fine-tuning run at exactly zero (see the module docstring).

    Use as a context manager around `trainer.train()`: the gradient hooks are registered on enter (through
    `HookManager`) and removed on exit, even on error.

    Args:
        model (`nn.Module`): the model being trained (not wrapped).
        masks (`dict[str, torch.Tensor]`): `{target name: pruned positions}` from `capture_masks`.
    """

    def __init__(self, model: nn.Module, masks: dict[str, torch.Tensor]) -> None:
        # a layer without zeros has nothing to keep; the masks are held as their multipliers (`kept`)
        self.keep = {name: kept(mask) for name, mask in masks.items() if mask.any()}
        self.weights = {name: model.get_submodule(name).weight for name in self.keep}
        self._hooks = HookManager()

    def __enter__(self) -> "MaskKeeper":
        for name, weight in self.weights.items():
            if weight.requires_grad:
                self._hooks.add_post_accumulate_grad_hook(weight, self._masking_hook(self.keep[name]))
        return self

    @staticmethod
    def _masking_hook(keep: torch.Tensor):
        def hook(param: torch.Tensor) -> None:
            param.grad.mul_(keep)

        return hook

    def __exit__(self, *exc: object) -> None:
        self._hooks.remove()

    @torch.no_grad()
    def apply(self, optimizer: Any = None) -> None:
        """Zero the pruned weights, and the state of `optimizer` (if given) at the same positions."""
        state = getattr(getattr(optimizer, "optimizer", optimizer), "state", None) or {}
        for name, weight in self.weights.items():
            keep = self.keep[name]
            weight.mul_(keep)
            for value in state.get(weight, {}).values():
                if torch.is_tensor(value) and value.shape == weight.shape:
                    value.mul_(keep)

    def on_optimizer_step(self, args, state, control, optimizer=None, **kwargs):
        self.apply()  # the weights; AdamW's state stays zero from the masked gradients (module docstring)


class FiniteGradients(TrainerCallback):
    """Stops a run before the optimizer step that would write non-finite values: the model keeps the weights of the
    last good step and a `NumericalError` names the step (every process sees the same all-reduced gradients, so all
    of them stop together).

    Args:
        params (`list[torch.nn.Parameter]`): the trained parameters.
    """

    def __init__(self, params: list[torch.nn.Parameter]) -> None:
        self.params = params

    @torch.no_grad()
    def on_pre_optimizer_step(self, args, state, control, **kwargs):
        grads = [p.grad for p in self.params if p.grad is not None]
        if grads and not bool(torch.stack(torch._foreach_norm(grads)).isfinite().all()):
            step = state.global_step + 1
            raise NumericalError(
                f"the loss or its gradient became NaN or infinite at step {step} of {state.max_steps}; the model keeps the "
                f"weights after step {step - 1}; lower learning_rate, raise warmup_steps or check the data."
            )
