"""The interface every pruning method implements: a statistic per input, then scores -> masks (-> new weights).

One method instance serves a whole run. The block walk (`stages.walk`) gives each group of target linears that read the
same input (q/k/v, gate/up, or a linear alone) one statistic of the method's `statistic` class, feeds it the
group's inputs, then calls `prune_group` once with the group's weights and writes the returned weights:
`prune_group` sees no hook and no module, only tensors. A method that needs a model-wide stage first (D-Pruner's
importance scores) runs it in `prepare`, through the stages the run hands it.
"""

from __future__ import annotations

from abc import ABC
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from ..configuration import DPrunerConfig
from .masks import prune_mask
from ..runtime.timers import StageTimer

__all__ = ["PruningMethod", "LayerResult"]


@dataclass
class LayerResult:
    """What pruning one matrix produced.

    Args:
        weight (`torch.Tensor`): the new weight, `(d_out, d_in)`, zeros where pruned.
        mask (`torch.Tensor`): bool, `True` where pruned.
        saliency (`torch.Tensor`, *optional*): the score the mask was chosen from (SparseGPT's gives D-Pruner's G);
            only kept when the pipeline asks for it.
    """

    weight: torch.Tensor
    mask: torch.Tensor
    saliency: torch.Tensor | None = None


class PruningMethod(ABC):
    """Base class of the pruning methods.

    A run builds one instance from the config (`methods.registry.build_method`), calls `prepare` once for any
    model-wide stage the method needs before the block walk, then walks the blocks, calling `prune_group` for each
    group of target linears that read one input.

    Class attributes (capability flags the pipeline reads instead of method names):
        name: registry name (a `MethodName` value).
        statistic: class of the per-input statistic (`methods.statistics`), `None` for data-free scores.
        requires_data: the block walk needs calibration windows (the statistic's inputs); magnitude's does not.
        requires_domain_data: `prepare` reads a domain dataset as well as a general one.
        accepts_scores: `prepare` can take saved scores (`importance=`) instead of computing them from data.
        updates_weights: changes surviving weights (the OBS update).
        default_granularity: comparison group when the config leaves `granularity` unset.
        changes_weights: `prune_group` returns different weights (False only for score-only stages); when False,
            the block walk reuses the calibration pass's outputs instead of running the block a second time.
        default_reconstruction: `"obs"` when the surviving weights are updated unless the config says otherwise
            (SparseGPT, D-Pruner's recipe), else `"none"`; a method that does not update weights itself is wrapped in
            `methods.reconstruction.ObsReconstruction` when it reconstructs.
        own_options: the config fields only this method reads (the CLI refuses them typed with another method).
        stage_name: the report's name of the block walk's stage; `reconstructed_stage_name` when
            `ObsReconstruction` wraps the method.

    Args:
        config (`DPrunerConfig`): the run's options.
        keep_saliency (`bool`, *optional*, defaults to `False`): return each matrix's score in `LayerResult.saliency`.
    """

    name: ClassVar[str]
    statistic: ClassVar[type | None] = None
    requires_data: ClassVar[bool] = True
    requires_domain_data: ClassVar[bool] = False
    accepts_scores: ClassVar[bool] = False
    updates_weights: ClassVar[bool] = False
    default_granularity: ClassVar[str] = "layer"
    changes_weights: ClassVar[bool] = True
    default_reconstruction: ClassVar[str] = "none"
    own_options: ClassVar[tuple[str, ...]] = ()
    stage_name: ClassVar[str] = "prune"
    reconstructed_stage_name: ClassVar[str] = "prune"

    def __init__(self, config: DPrunerConfig, keep_saliency: bool = False) -> None:
        self.config = config
        self.keep_saliency = keep_saliency
        self.granularity = config.granularity or self.default_granularity

    @classmethod
    def from_config(cls, config: DPrunerConfig) -> "PruningMethod":
        """The instance a run with `config` prunes with (a method with variants picks one here)."""
        return cls(config)

    def prepare(self, run: Any, general: Any, domain: Any, importance: Any = None) -> Any:
        """The model-wide stage before the block walk; the baselines have none.

        Args:
            run (`stages.run.Run`): the run's model, targets, config, report and the stages it offers.
            general (`list[torch.Tensor]`, *optional*): general calibration windows.
            domain (`list[torch.Tensor]`, *optional*): domain calibration windows.
            importance (*optional*): saved scores (only for a method with `accepts_scores`).

        Returns:
            What the stage computed that the result keeps (D-Pruner's scores), or `None`.
        """
        return None

    def preparation(self) -> list[tuple[str, "PruningMethod | None"]]:
        """The stages `prepare` runs from data, in order, for estimates made before any work: `(stage name, method)`, the method
        of a saliency walk over the blocks (weights put back), or `None` for the domain-gradient pass."""
        return []

    def score(self, name: str, weight: torch.Tensor, statistic: Any) -> torch.Tensor:
        """Importance of each weight of matrix `name`, `(d_out, d_in)` fp32, higher is more important."""
        raise NotImplementedError

    def prune_group(
        self, weights: dict[str, torch.Tensor], statistic: Any, timer: StageTimer | None = None
    ) -> dict[str, LayerResult]:
        """Prune the matrices of one input group (they share `statistic`); mask the lowest scores, no update."""
        timer = timer or StageTimer()
        results = {}
        cfg = self.config
        for name, weight in weights.items():
            with timer("mask_selection"):
                score = self.score(name, weight, statistic)
                mask = prune_mask(score, cfg.sparsity, self.granularity, cfg.nm, cfg.block_size)
            results[name] = LayerResult(weight.masked_fill(mask, 0), mask, score if self.keep_saliency else None)
        return results
