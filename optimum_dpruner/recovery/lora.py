"""Masked LoRA through peft: the adapter's update is delta W * M in training and at the merge (SQFT / LoRS style).

A plain LoRA adapter adds B A (dense) to a pruned W, so `merge_and_unload` fills every pruned position in (wanda
#83: 40% -> 32.7% sparsity). `MaskedLoraLinear` is a peft `lora.Linear` whose update is masked by the pruned
positions of its base weight: the forward pass adds `x (s * B A * M)^T`, and `get_delta_weight` (which peft's
`merge`, `unmerge` and `merge_and_unload` use) returns the same masked update. The merged weight `W + s B A * M`
therefore has exactly the pruned zeros and computes what the adapter model computed, up to float rounding.

The masked forward builds the d_out x d_in update once per call (the price of masking: an elementwise pass and a
rank-r matmul of the layer's size, like SQFT's). Where the input reaches every adapter unchanged (no dropout) and the
base layer is a plain `nn.Linear`, the update is added to the frozen weight and the layer runs one matmul,
`x (W + delta W)^T + b`, instead of two; backward then also costs one layer-size matmul for the input's gradient and
one for the update's, as plain full fine-tuning does. A layer with no pruned zeros takes peft's own forward. The
memory of a LoRA run is otherwise peft's.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from .masking import kept

__all__ = ["MaskedLoraLinear", "add_masked_lora", "merge_masked_lora"]


try:
    import peft
    from peft.tuners.lora.layer import Linear as _LoraLinear
except ImportError:  # pragma: no cover - peft is an install requirement
    raise ImportError("recovery with mode='lora' needs peft: pip install 'peft>=0.21'") from None


class MaskedLoraLinear(_LoraLinear):
    """A peft LoRA linear whose update is masked by the pruned positions of its base weight (`== 0` at creation).

    Registered with `LoraConfig._register_custom_module({nn.Linear: MaskedLoraLinear})`, peft's documented hook for
    custom LoRA layers; everything else (adapters, dropout, scaling, saving, merging) is peft's.
    """

    def __init__(self, base_layer: nn.Module, adapter_name: str, **kwargs: Any) -> None:
        super().__init__(base_layer, adapter_name, **kwargs)
        weight = self.get_base_layer().weight
        self.register_buffer("dpruner_keep", kept(weight.detach().eq(0)), persistent=False)  # 0 where pruned
        self.dpruner_has_zeros = not bool(self.dpruner_keep.all())  # without zeros the mask is a no-op: peft's path

    def get_delta_weight(self, adapter: str) -> torch.Tensor:
        delta = super().get_delta_weight(adapter)
        return delta * self.dpruner_keep.to(delta.device)

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        if not self.dpruner_has_zeros or self.disable_adapters or self.merged or kwargs.get("adapter_names") is not None:
            return super().forward(x, *args, **kwargs)
        adapters = [adapter for adapter in self.active_adapters if adapter in self.lora_A]
        base = self.get_base_layer()
        if self._fusable(base, adapters, x, args, kwargs):
            weight = base.weight
            for adapter in adapters:
                weight = weight + self.get_delta_weight(adapter).to(weight.dtype)
            return F.linear(x, weight, base.bias)
        result = self.base_layer(x, *args, **kwargs)
        dtype = result.dtype
        for adapter in adapters:
            delta = self.get_delta_weight(adapter)
            result = result + F.linear(self.lora_dropout[adapter](self._cast_input_dtype(x, delta.dtype)), delta)
        return result.to(dtype)

    def _fusable(self, base: nn.Module, adapters: list[str], x: torch.Tensor, args: tuple, kwargs: dict) -> bool:
        """One matmul with W + delta W computes the same as base + update when nothing sits between: a plain
        `nn.Linear` without hooks (offload or quantisation hooks must see their own call), no dropout, no extra
        arguments, an input already in the weight's dtype."""
        return (type(base) is nn.Linear and not args and not kwargs and x.dtype == base.weight.dtype
                and not base._forward_hooks
                and not base._forward_pre_hooks and bool(adapters)
                and all(isinstance(self.lora_dropout[adapter], nn.Identity) for adapter in adapters))

    def __repr__(self) -> str:
        return "masked_" + super().__repr__()


def add_masked_lora(model: nn.Module, targets: list[str], r: int, alpha: float, dropout: float, masked: bool = True):
    """Wrap `model` in a peft model with a (masked) LoRA adapter on each of `targets` (full module names).

    Args:
        masked (`bool`, *optional*, defaults to `True`): `False` gives peft's plain LoRA (whose merge fills the
            zeros in; kept for the comparison in the tests and docs).

    Returns:
        `peft.PeftModel`: only the adapters are trainable.
    """
    if not targets:
        raise ConfigError("lora_targets matched none of the pruned target linears; widen the patterns or drop them.")
    config = peft.LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=list(targets), bias="none",
                             task_type="CAUSAL_LM")
    if masked:
        config._register_custom_module({nn.Linear: MaskedLoraLinear})
    return peft.get_peft_model(model, config)


def merge_masked_lora(peft_model) -> nn.Module:
    """Merge the masked adapters into the base weights and return the plain transformers model (peft's
    `merge_and_unload`, which goes through `MaskedLoraLinear.get_delta_weight`)."""
    return peft_model.merge_and_unload()
