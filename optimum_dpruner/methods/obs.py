"""The Optimal Brain Surgeon solver: every method that reconstructs weights calls `obs_prune`.

Notation: W is `(R, d)`, the rows of one target matrix or the stacked rows of several matrices that read the same
input (q/k/v, gate/up); H is the `(d, d)` Hessian of the layer-wise squared error, shared by those rows; U is the
upper Cholesky factor of the damped H^-1 (U^T U = H^-1). Removing weight (r, j) costs W_rj^2 / U_jj^2 (the OBS
saliency), and its error is spread over the later columns of row r through row j of U. The OBS update of each row
is independent of the other rows, so stacking matrices that share H gives every matrix exactly the weights it would
get alone, with one factorisation and one column pass for all of them.

Two uses:
- adaptive masks (SparseGPT, arXiv 2301.00774): the mask of each `block_size`-column block is chosen from the
  saliency of the weights as the OBS updates of earlier blocks left them (`granularity="block"` or `"row"`),
  fixed for the whole matrix up front (`"layer"`), or chosen for every M columns as they are reached (N:M);
- fixed masks (`mask=`): the surviving weights are reconstructed for a mask chosen elsewhere (any method's, or a
  saved importance's), the fixed-mask OBS reconstruction.

Comparison groups never span matrices: `row_groups` gives each matrix's rows.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ..errors import DPrunerWarning, NumericalError
from .masks import nm_mask, prune_mask
from ..runtime.timers import StageTimer
from .base import LayerResult

__all__ = [
    "MaskSpec",
    "inverse_hessian_factor",
    "obs_prune",
    "obs_saliency",
    "prepare_hessian",
    "stack_rows",
    "split_rows",
    "factor_and_stack",
]

_MAX_DAMP_ESCALATIONS = 6


@dataclass(frozen=True)
class MaskSpec:
    """How an adaptive mask is chosen: `sparsity` within each comparison group (`granularity`), or N:M."""

    sparsity: float
    granularity: str = "block"
    nm: tuple[int, int] | None = None


def prepare_hessian(hessian: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """`(H, dead)`: H with the diagonal of dead inputs (H_jj = 0: the input is always zero) set to 1, and the
    bool mask of those inputs (their weights are to be zeroed: they never contribute)."""
    dead = hessian.diagonal() == 0
    if dead.any():
        hessian = hessian.clone()
        hessian.diagonal()[dead] = 1.0
    return hessian, dead


def inverse_hessian_factor(hessian: torch.Tensor, damp: float) -> torch.Tensor:
    """Upper Cholesky factor U of (H + damp * mean(diag H) * I)^-1, so that U^T U = H_damped^-1.

    Computed from one Cholesky factorisation of the index-reversed H (J H J = L L^T gives U = J L^-1 J, the unique
    upper factor with a positive diagonal) and one triangular inverse. If the factorisation fails, the damping is
    raised tenfold (with a `DPrunerWarning`), up to six times; then a `NumericalError` is raised. The result never
    holds NaN.
    """
    mean_diag = hessian.diagonal().mean()
    eye = torch.eye(hessian.shape[0], dtype=hessian.dtype, device=hessian.device)
    flipped = hessian.flip(0, 1)
    current = damp
    for _ in range(_MAX_DAMP_ESCALATIONS + 1):
        lower, info = torch.linalg.cholesky_ex(flipped + current * mean_diag * eye)
        if info.item() == 0:
            upper = torch.linalg.solve_triangular(lower, eye, upper=False).flip(0, 1)
            if torch.isfinite(upper).all():
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


def obs_saliency(weight: torch.Tensor, upper: torch.Tensor) -> torch.Tensor:
    """W^2 / U_jj^2: the OBS cost of removing each weight alone, `(R, d)`."""
    return weight.pow(2) / upper.diagonal().pow(2).unsqueeze(0)


def _rows(row_groups: Sequence[slice] | None, num_rows: int) -> list[slice]:
    return list(row_groups) if row_groups else [slice(0, num_rows)]


def _choose(saliency: torch.Tensor, spec: MaskSpec, row_groups: list[slice], granularity: str) -> torch.Tensor:
    """Mask of `saliency` (`(R, d)`, rows = output rows) with `granularity` inside each matrix's rows."""
    if granularity == "row":
        return prune_mask(saliency, spec.sparsity, "row")
    mask = torch.empty_like(saliency, dtype=torch.bool)
    for rows in row_groups:
        mask[rows] = prune_mask(saliency[rows], spec.sparsity, "layer")
    return mask


@torch.no_grad()
def obs_prune(
    weight: torch.Tensor,
    upper: torch.Tensor,
    spec: MaskSpec | None = None,
    mask: torch.Tensor | None = None,
    block_size: int = 128,
    row_groups: Sequence[slice] | None = None,
    return_saliency: bool = False,
    timer: StageTimer | None = None,
    prior: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Prune `weight` and update the surviving weights by OBS, column block by column block.

    Args:
        weight (`torch.Tensor`): `(R, d)` fp32; read, not modified.
        upper (`torch.Tensor`): `(d, d)` U from `inverse_hessian_factor`.
        spec (`MaskSpec`, *optional*): adaptive mask choice (SparseGPT); exactly one of `spec` and `mask`.
        mask (`torch.Tensor`, *optional*): `(R, d)` bool, `True` where pruned: a fixed mask to reconstruct for.
        block_size (`int`, *optional*, defaults to 128): columns per lazy-update block (and per mask block for
            `granularity="block"`).
        row_groups (`Sequence[slice]`, *optional*): each stacked matrix's rows; comparison groups stay inside them.
        return_saliency (`bool`, *optional*, defaults to `False`): also return the saliency each block's mask was
            chosen from (W^2 / U_jj^2 of the weights when the block is reached; D-Pruner's general importance).
        timer (`StageTimer`, *optional*): receives `mask_selection` and `obs_update` seconds.
        prior (`torch.Tensor`, *optional*): `(R, d)` non-negative factor multiplied into the saliency wherever an
            adaptive mask is chosen (e.g. a domain importance), so that a weight is kept for both reasons.

    Returns:
        `(weight, mask, saliency)`: the new `(R, d)` fp32 weight with zeros where pruned, the bool mask, and the
        saliency (`None` unless asked for).
    """
    if (spec is None) == (mask is None):
        raise ValueError("pass exactly one of spec (adaptive mask) and mask (fixed mask)")
    timer = timer or StageTimer()
    num_rows, d = weight.shape
    groups = _rows(row_groups, num_rows)
    diag = upper.diagonal()
    nm = spec.nm if spec is not None else None
    adaptive_blocks = spec is not None and nm is None and spec.granularity in ("block", "row")
    # column-major copies: the column loop then reads and updates contiguous rows of memory
    wt = weight.t().contiguous()
    prior_t = prior.t().contiguous() if prior is not None and spec is not None else None
    with timer("mask_selection"):
        if mask is not None:
            mask_t = mask.t().contiguous()
        elif nm is None and spec.granularity == "layer":
            score = obs_saliency(weight, upper)
            mask_t = _choose(score if prior is None else score * prior, spec, groups, "layer").t().contiguous()
        else:
            mask_t = torch.zeros_like(wt, dtype=torch.bool)
    saliency_t = torch.empty_like(wt) if return_saliency else None
    for i1 in range(0, d, block_size):
        i2 = min(i1 + block_size, d)
        w1 = wt[i1:i2]  # (b, R) view: column j of the block is row j here
        u1 = upper[i1:i2, i1:i2]
        d1 = diag[i1:i2].unsqueeze(1)
        with timer("mask_selection"):
            if saliency_t is not None or adaptive_blocks:
                block_saliency = w1.pow(2) / d1.pow(2)
                if saliency_t is not None:
                    saliency_t[i1:i2] = block_saliency
                if adaptive_blocks:
                    score = block_saliency if prior_t is None else block_saliency * prior_t[i1:i2]
                    mask_t[i1:i2] = _choose(score.t(), spec, groups, spec.granularity).t()
            m1 = mask_t[i1:i2]
            scale = m1.to(w1.dtype) / d1  # err_j = W_j * [pruned] / U_jj
        with timer("obs_update"):
            errors = torch.empty_like(w1)
            for i in range(i2 - i1):
                if nm is not None and i % nm[1] == 0:
                    cols = slice(i, i + nm[1])
                    score = w1[cols].pow(2) / d1[cols].pow(2)
                    if prior_t is not None:
                        score = score * prior_t[i1 + i : i1 + i + nm[1]]
                    group_mask = nm_mask(score.t(), *nm).t()
                    m1[cols] = group_mask
                    scale[cols] = group_mask.to(w1.dtype) / d1[cols]
                torch.mul(w1[i], scale[i], out=errors[i])
                w1[i:].addr_(u1[i, i:], errors[i], alpha=-1.0)
            if i2 < d:
                wt[i2:].addmm_(upper[i1:i2, i2:].t(), errors, alpha=-1.0)
    if not torch.isfinite(wt).all():
        raise NumericalError("the OBS update produced non-finite weights; raise `damp` or check the calibration data.")
    wt.masked_fill_(mask_t, 0.0)
    saliency = saliency_t.t() if saliency_t is not None else None
    return wt.t(), mask_t.t(), saliency


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


def factor_and_stack(
    weights: dict[str, torch.Tensor], hessian, damp: float, timer: StageTimer | None = None
) -> tuple[torch.Tensor, torch.Tensor, list[slice]]:
    """What every OBS `prune_group` starts from: `(U, W, slices)`, the upper Cholesky factor of the group's damped
    H^-1 (`methods.statistics.Hessian.inverse_factor`, computed once per group), the group's rows stacked with dead
    input columns zeroed, and each matrix's row slice."""
    upper, dead = hessian.inverse_factor(damp, timer)
    stacked, slices = stack_rows(weights, upper.device, dead)
    return upper, stacked, slices
