"""SparseGPT: Optimal-Brain-Surgeon saliency with the OBS update of the remaining weights."""

from __future__ import annotations

import torch

from ..configuration import MethodName
from ..errors import ConfigError
from ..runtime.timers import StageTimer
from .base import LayerResult, PruningMethod
from .obs import MaskSpec, factor_and_stack, obs_prune, split_rows
from .registry import register_method
from .statistics import Hessian

__all__ = ["SparseGPTMethod"]


@register_method
class SparseGPTMethod(PruningMethod):
    """SparseGPT (Frantar & Alistarh 2023, arXiv 2301.00774).

    Statistic: H = 2 sum_t c_t x_t x_t^T over the calibration tokens (`methods.statistics.Hessian`), a
    `(d_in, d_in)` fp32 matrix per input group, kept in CPU RAM between batches with `offload_hessians=True`.
    Saliency: W_ij^2 / U_jj^2 with U the upper Cholesky factor of the damped H^-1. The matrices of a group (q/k/v,
    gate/up) are stacked by rows and go through one factorisation and one OBS column pass
    (`methods.obs.obs_prune`); each matrix keeps its own comparison groups. Weights are processed in blocks of
    `block_size` columns; after each column is masked, the OBS update spreads its error over the later columns.
    Comparison group: each column block (`granularity="block"`, as the paper); `"row"` picks per row within each
    block, `"layer"` fixes one mask for the matrix up front. Updates weights: yes.
    The saliency of each block, taken when the block's mask is chosen, is D-Pruner's general importance G.
    """

    name = MethodName.SPARSEGPT.value
    statistic = Hessian
    updates_weights = True
    default_granularity = "block"
    default_reconstruction = "obs"

    @classmethod
    def from_config(cls, config) -> "SparseGPTMethod":
        if config.reconstruction == "none":
            raise ConfigError("reconstruction='none' does not apply to method='sparsegpt', which always updates the "
                              "surviving weights; drop reconstruction or use method='wanda'.")
        return cls(config)

    def __init__(self, config, keep_saliency: bool = False) -> None:
        super().__init__(config, keep_saliency)
        nm = config.nm
        if nm is not None and config.block_size % nm[1]:
            raise ConfigError(
                f"block_size={config.block_size} must be a multiple of M={nm[1]} for pattern {config.pattern!r}."
            )

    def mask_spec(self) -> MaskSpec:
        return MaskSpec(self.config.sparsity, self.granularity, self.config.nm)

    def prune_group(
        self, weights: dict[str, torch.Tensor], statistic: Hessian, timer: StageTimer | None = None
    ) -> dict[str, LayerResult]:
        timer = timer or StageTimer()
        upper, stacked, slices = factor_and_stack(weights, statistic, self.config.damp, timer)
        new, mask, saliency = obs_prune(stacked, upper, spec=self.mask_spec(), block_size=self.config.block_size,
                                        row_groups=slices, return_saliency=self.keep_saliency, timer=timer)
        return split_rows(weights, slices, new, mask, saliency)
