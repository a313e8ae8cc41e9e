"""Fixed-mask reconstruction: any method's mask, then the OBS update of the surviving weights.

The mask of each matrix comes from the wrapped method (Wanda, magnitude, D-Pruner's importance, saved scores);
the surviving weights are then updated by OBS on the (mixed) calibration Hessian of the partially pruned model,
block by block, and the pruned outputs are propagated, exactly as SparseGPT does for its own masks
(`methods.obs.obs_prune` with `mask=`). N:M masks keep their pattern: the update never revives a pruned weight.
This is Wanda's `ablate` weight update and the fixed-mask problem of arXiv 2401.02938, solved with SparseGPT's
sequential OBS update rather than exactly.
"""

from __future__ import annotations

import torch

from ..runtime.timers import StageTimer
from .base import LayerResult, PruningMethod
from .obs import factor_and_stack, obs_prune, split_rows
from .statistics import Hessian, InputNorms

__all__ = ["ObsReconstruction"]


class ObsReconstruction(PruningMethod):
    """Wraps `base`: its masks, with the surviving weights reconstructed by OBS.

    Statistic: the Hessian (`(d_in, d_in)` fp32 per input group); a base method that needs input norms reads them
    off its diagonal. Updates weights: yes. Not registered: `DPrunerConfig(reconstruction="obs")` selects it.

    Args:
        base (`PruningMethod`): the method whose masks are kept.
    """

    statistic = Hessian
    updates_weights = True

    def __init__(self, base: PruningMethod) -> None:
        super().__init__(base.config, base.keep_saliency)
        self.base = base
        self.name = base.name
        self.granularity = base.granularity
        self.requires_domain_data = base.requires_domain_data
        self.accepts_scores = base.accepts_scores
        self.own_options = base.own_options
        self.stage_name = base.reconstructed_stage_name

    def preparation(self):
        return self.base.preparation()

    def prepare(self, run, general, domain, importance=None):
        """The wrapped method's model-wide stage (D-Pruner's scores), if it has one."""
        return self.base.prepare(run, general, domain, importance)

    def _base_statistic(self, hessian: Hessian):
        if self.base.statistic is Hessian:
            return hessian
        if self.base.statistic is InputNorms:
            return InputNorms.from_hessian(hessian)
        return None

    def prune_group(
        self, weights: dict[str, torch.Tensor], statistic: Hessian, timer: StageTimer | None = None
    ) -> dict[str, LayerResult]:
        timer = timer or StageTimer()
        upper, stacked, slices = factor_and_stack(weights, statistic, self.config.damp, timer)
        chosen = self.base.prune_group(weights, self._base_statistic(statistic), timer)
        mask = torch.cat([chosen[name].mask.to(upper.device) for name in weights])
        new, mask, _ = obs_prune(stacked, upper, mask=mask, block_size=self.config.block_size, row_groups=slices,
                                 timer=timer)
        results = split_rows(weights, slices, new, mask, None)
        for name, result in results.items():
            result.saliency = chosen[name].saliency
        return results
