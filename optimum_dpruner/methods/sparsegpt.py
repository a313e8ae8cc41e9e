"""SparseGPT: Optimal-Brain-Surgeon saliency with the OBS update of the remaining weights."""

from __future__ import annotations

import math
import warnings

import torch

from ..configuration import MethodName
from ..errors import ConfigError, DataError, DPrunerWarning, NumericalError
from ..masks import nm_mask, prune_mask
from .base import LayerResult, PruningMethod
from .registry import register_method

__all__ = ["SparseGPTMethod", "inverse_hessian_factor"]

_MAX_DAMP_ESCALATIONS = 6


def inverse_hessian_factor(hessian: torch.Tensor, damp: float) -> torch.Tensor:
    """Upper Cholesky factor U of (H + damp * mean(diag H) * I)^-1, so that U^T U = H_damped^-1.

    If a Cholesky factorisation fails, the damping is raised tenfold (with a `DPrunerWarning`), up to six
    times; then a `NumericalError` is raised. The result never holds NaN.
    """
    mean_diag = hessian.diagonal().mean()
    eye = torch.eye(hessian.shape[0], dtype=hessian.dtype, device=hessian.device)
    current = damp
    for _ in range(_MAX_DAMP_ESCALATIONS + 1):
        lower, info = torch.linalg.cholesky_ex(hessian + current * mean_diag * eye)
        if info.item() == 0:
            upper, info = torch.linalg.cholesky_ex(torch.cholesky_inverse(lower), upper=True)
            if info.item() == 0 and torch.isfinite(upper).all():
                return upper
        new = current * 10 if current > 0 else 1e-6
        warnings.warn(
            f"Cholesky factorisation of the Hessian failed with damp={current:g}; retrying with damp={new:g}.",
            DPrunerWarning,
            stacklevel=2,
        )
        current = new
    raise NumericalError(
        f"the Hessian is not positive definite even with damp={current / 10:g}; check the calibration data "
        "(NaN/inf activations?) or raise `damp`."
    )


@register_method
class SparseGPTMethod(PruningMethod):
    """SparseGPT (Frantar & Alistarh 2023, arXiv 2301.00774).

    Statistic: H = (2/N) sum over the N calibration tokens of x x^T, a `(d_in, d_in)` fp32 running mean, kept
    in CPU RAM between batches with `offload_hessians=True`.
    Saliency: W_ij^2 / U_jj^2 with U the upper Cholesky factor of the damped H^-1. Weights are processed in
    blocks of `block_size` columns; after each column is masked, the OBS update spreads its error over the
    later columns. Comparison group: each column block (`granularity="block"`, as the paper); `"row"` picks
    per row within each block, `"layer"` fixes one mask for the matrix up front. Updates weights: yes.
    The saliency of each block, taken when the block's mask is chosen, is D-Pruner's general importance G.
    """

    name = MethodName.SPARSEGPT.value
    updates_weights = True
    default_granularity = "block"

    def __init__(self, weight: torch.Tensor, config) -> None:
        super().__init__(weight, config)
        d_in = weight.shape[1]
        self.device = weight.device  # where the Hessian is updated and used
        home = torch.device("cpu") if config.offload_hessians else weight.device  # where it waits in between
        self.hessian = torch.zeros(d_in, d_in, dtype=torch.float32, device=home)
        self.num_tokens = 0
        nm = config.nm
        if nm is not None and config.block_size % nm[1]:
            raise ConfigError(
                f"block_size={config.block_size} must be a multiple of M={nm[1]} for pattern {config.pattern!r}."
            )

    def add_batch(self, x: torch.Tensor) -> None:
        hessian = self.hessian.to(self.device)  # the same tensor unless Hessians are offloaded
        x = x.reshape(-1, x.shape[-1]).to(device=self.device, dtype=torch.float32)
        new_total = self.num_tokens + x.shape[0]
        hessian *= self.num_tokens / new_total
        self.num_tokens = new_total
        x = x * math.sqrt(2.0 / new_total)
        hessian.addmm_(x.T, x)
        self.hessian = hessian.to(self.hessian.device)

    def _prepare(self, weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """fp32 copy of W with dead columns zeroed, and U (upper Cholesky factor of the damped H^-1)."""
        if self.num_tokens == 0:
            raise DataError("SparseGPT received no calibration tokens for a layer; check the calibration data.")
        w = weight.detach().to(device=self.device, dtype=torch.float32).clone()
        hessian = self.hessian.to(self.device)
        dead = hessian.diagonal() == 0
        if dead.any():
            hessian = hessian.clone()
            hessian.diagonal()[dead] = 1.0
            w[:, dead] = 0.0
        return w, inverse_hessian_factor(hessian, self.config.damp)

    def score(self, weight: torch.Tensor) -> torch.Tensor:
        """OBS saliency of the unmodified weights (D-Pruner's `general_importance="obs"`)."""
        w, upper = self._prepare(weight)
        return w.pow(2) / upper.diagonal().pow(2).unsqueeze(0)

    def prune(self, weight: torch.Tensor) -> LayerResult:
        cfg = self.config
        w, upper = self._prepare(weight)
        d_out, d_in = w.shape
        inv_diag = upper.diagonal()
        nm = cfg.nm
        mask = torch.zeros_like(w, dtype=torch.bool)
        saliency = torch.empty_like(w)
        if nm is None and self.granularity == "layer":
            mask = prune_mask(w.pow(2) / inv_diag.pow(2).unsqueeze(0), cfg.sparsity, "layer")
        for i1 in range(0, d_in, cfg.block_size):
            i2 = min(i1 + cfg.block_size, d_in)
            w1 = w[:, i1:i2].clone()
            u1 = upper[i1:i2, i1:i2]
            block_saliency = w1.pow(2) / u1.diagonal().pow(2).unsqueeze(0)
            saliency[:, i1:i2] = block_saliency
            if nm is None and self.granularity != "layer":
                group = "layer" if self.granularity == "block" else "row"
                mask[:, i1:i2] = prune_mask(block_saliency, cfg.sparsity, group)
            errors = torch.zeros_like(w1)
            for i in range(i2 - i1):
                if nm is not None and i % nm[1] == 0:
                    cols = slice(i, i + nm[1])
                    group_saliency = w1[:, cols].pow(2) / u1.diagonal()[cols].pow(2).unsqueeze(0)
                    mask[:, i1 + i : i1 + i + nm[1]] = nm_mask(group_saliency, *nm)
                col = w1[:, i]
                pruned = mask[:, i1 + i]
                err = torch.where(pruned, col, torch.zeros_like(col)) / u1[i, i]
                w1[:, i:] -= err.unsqueeze(1) * u1[i, i:].unsqueeze(0)
                w1[:, i] = torch.where(pruned, torch.zeros_like(col), w1[:, i])
                errors[:, i] = err
            w[:, i1:i2] = w1
            w[:, i2:] -= errors @ upper[i1:i2, i2:]
        if not torch.isfinite(w).all():
            raise NumericalError("SparseGPT produced non-finite weights; raise `damp` or check the calibration data.")
        w[mask] = 0.0
        return LayerResult(weight=w.to(weight.dtype), mask=mask, saliency=saliency)

    def free(self) -> None:
        del self.hessian
