"""The interface every pruning method implements: collect statistics -> score -> mask.

One instance lives per target matrix while its decoder block is processed. The pipeline feeds it the layer's
inputs with `add_batch`, asks for `prune` once, writes the returned weight, and calls `free`. Methods never see a
hook or a module; they receive tensors and return tensors.
"""

from __future__ import annotations

from abc import ABC
from dataclasses import dataclass
from typing import ClassVar

import torch

from ..configuration import DPrunerConfig
from ..masks import prune_mask

__all__ = ["PruningMethod", "LayerResult"]


@dataclass
class LayerResult:
    """What pruning one matrix produced.

    Args:
        weight (`torch.Tensor`): the new weight, `(d_out, d_in)`, zeros where pruned.
        mask (`torch.Tensor`): bool, `True` where pruned.
        saliency (`torch.Tensor`, *optional*): the score the mask was chosen from (SparseGPT's gives D-Pruner's G).
    """

    weight: torch.Tensor
    mask: torch.Tensor
    saliency: torch.Tensor | None = None


class PruningMethod(ABC):
    """Base class of the per-matrix pruning methods.

    Class attributes (capability flags the pipeline reads instead of method names):
        name: registry name (a `MethodName` value).
        requires_data: needs calibration inputs (`add_batch`); magnitude does not.
        updates_weights: changes surviving weights (SparseGPT's OBS update).
        default_granularity: comparison group when the config leaves `granularity` unset.
        requires_domain_data: needs a domain dataset as well as a general one (D-Pruner).
        changes_weights: `prune` returns a different weight (False only for score-only stages); when False, the
            pipeline reuses the calibration pass's outputs instead of running the block a second time.
    """

    name: ClassVar[str]
    requires_data: ClassVar[bool] = True
    updates_weights: ClassVar[bool] = False
    default_granularity: ClassVar[str] = "layer"
    requires_domain_data: ClassVar[bool] = False
    changes_weights: ClassVar[bool] = True

    def __init__(self, weight: torch.Tensor, config: DPrunerConfig) -> None:
        self.config = config
        self.shape = tuple(weight.shape)
        self.granularity = config.granularity or self.default_granularity

    def add_batch(self, x: torch.Tensor) -> None:
        """Accumulate statistics from the layer's input `x` of shape `(..., d_in)`."""

    def score(self, weight: torch.Tensor) -> torch.Tensor:
        """Importance of each weight, `(d_out, d_in)`, higher is more important."""
        raise NotImplementedError

    def prune(self, weight: torch.Tensor) -> LayerResult:
        """Mask the lowest scores of `weight` and return the pruned weight (no reconstruction)."""
        score = self.score(weight)
        mask = prune_mask(score, self.config.sparsity, self.granularity, self.config.nm, self.config.block_size)
        return LayerResult(weight=weight.masked_fill(mask, 0), mask=mask, saliency=score)

    def free(self) -> None:
        """Drop the statistics."""
