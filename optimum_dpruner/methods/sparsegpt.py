"""SparseGPT: Optimal-Brain-Surgeon saliency with the OBS update of the remaining weights."""

from __future__ import annotations

import torch

from ..configuration import MethodName
from ..errors import ConfigError
from ..runtime.timers import StageTimer
from .base import LayerResult, PruningMethod
from .obs import MaskSpec, obs_prune, obs_saliency
from .registry import register_method
from .statistics import Hessian

__all__ = ["SparseGPTMethod", "stack_rows", "split_rows"]


def stack_rows(weights: dict[str, torch.Tensor], device: torch.device, dead: torch.Tensor) -> tuple[torch.Tensor, list[slice]]:
    """The matrices of one input group stacked by rows, fp32 on `device`, dead input columns zeroed; and each
    matrix's row slice."""
    stacked = torch.cat([w.detach().to(device=device, dtype=torch.float32) for w in weights.values()])
    if dead.any():
        stacked[:, dead] = 0.0
    slices, start = [], 0
    for w in weights.values():
        slices.append(slice(start, start + w.shape[0]))
        start += w.shape[0]
    return stacked, slices


def split_rows(
    weights: dict[str, torch.Tensor], slices: list[slice], new: torch.Tensor, mask: torch.Tensor,
    saliency: torch.Tensor | None,
) -> dict[str, LayerResult]:
    """`LayerResult` per matrix from stacked results (views of the stacked rows)."""
    return {
        name: LayerResult(new[rows], mask[rows], saliency[rows] if saliency is not None else None)
        for name, rows in zip(weights, slices)
    }


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
        upper, dead = statistic.inverse_factor(self.config.damp, timer)
        stacked, slices = stack_rows(weights, upper.device, dead)
        new, mask, saliency = obs_prune(stacked, upper, spec=self.mask_spec(), block_size=self.config.block_size,
                                        row_groups=slices, return_saliency=self.keep_saliency, timer=timer)
        return split_rows(weights, slices, new, mask, saliency)

    def score(self, name: str, weight: torch.Tensor, statistic: Hessian) -> torch.Tensor:
        """OBS saliency of the unmodified weights (D-Pruner's `general_importance="obs"`)."""
        upper, dead = statistic.inverse_factor(self.config.damp)
        stacked, _ = stack_rows({name: weight}, upper.device, dead)
        return obs_saliency(stacked, upper)
