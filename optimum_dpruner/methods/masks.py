"""From scores to masks: pure tensor functions, no model, no hooks.

A score has the shape of the weight W, `(d_out, d_in)` (the `nn.Linear` layout); higher means more important.
A mask is a bool tensor of the same shape, `True` where the weight is pruned (set to zero).
Ties are broken deterministically: among equal scores the entry with the lower flat index is pruned first
(stable sort), so the same scores always give the same mask, bit for bit.
"""

from __future__ import annotations

import math

import torch

from ..errors import ConfigError

__all__ = ["prune_mask", "nm_mask", "lowest_k_mask", "comparison_groups"]


def _num_to_prune(sparsity: float, n: int) -> int:
    return min(n, int(round(sparsity * n)))


def lowest_k_mask(score: torch.Tensor, k: int) -> torch.Tensor:
    """Mask the `k` lowest entries of every row of a 2-D `score`; among equal scores the lower index goes first.

    Linear time (a k-th value selection, then a running count of the ties), and the same result as a stable
    sort would give.
    """
    rows, n = score.shape
    if k <= 0:
        return torch.zeros_like(score, dtype=torch.bool)
    if k >= n:
        return torch.ones_like(score, dtype=torch.bool)
    kth = score.kthvalue(k, dim=1, keepdim=True).values
    below = score < kth
    ties = score == kth
    room = k - below.sum(dim=1, keepdim=True)
    return below | (ties & (ties.cumsum(dim=1) <= room))


def nm_mask(score: torch.Tensor, n: int, m: int) -> torch.Tensor:
    """N:M mask along the input dimension: in every group of `m` consecutive columns keep the `n` highest."""
    d_out, d_in = score.shape
    if d_in % m:
        raise ConfigError(f"pattern '{n}:{m}' needs the input size to be a multiple of {m}; a matrix has {d_in} inputs.")
    grouped = score.reshape(-1, m)
    return lowest_k_mask(grouped, m - n).reshape(d_out, d_in)


def prune_mask(
    score: torch.Tensor,
    sparsity: float,
    granularity: str = "layer",
    nm: tuple[int, int] | None = None,
    block_size: int = 128,
) -> torch.Tensor:
    """Mask the lowest-scored weights.

    Args:
        score (`torch.Tensor`): `(d_out, d_in)` importance, higher is more important.
        sparsity (`float`): fraction to prune within each comparison group (ignored for N:M).
        granularity (`str`, *optional*, defaults to `"layer"`): `"layer"` (one group: the matrix), `"row"` (each
            output row) or `"block"` (each block of `block_size` input columns).
        nm (`tuple[int, int]`, *optional*): `(N, M)` for an N:M pattern; overrides `granularity`.
        block_size (`int`, *optional*, defaults to 128): block width for `granularity="block"`.

    Returns:
        `torch.Tensor`: bool mask, `True` where the weight is pruned.
    """
    if score.dim() != 2:
        raise ValueError(f"score must be 2-D (d_out, d_in), got shape {tuple(score.shape)}")
    if nm is not None:
        return nm_mask(score, *nm)
    if granularity == "layer":
        flat = score.reshape(1, -1)
        return lowest_k_mask(flat, _num_to_prune(sparsity, flat.numel())).reshape(score.shape)
    if granularity == "row":
        return lowest_k_mask(score, _num_to_prune(sparsity, score.shape[1]))
    if granularity == "block":
        mask = torch.empty_like(score, dtype=torch.bool)
        for start in range(0, score.shape[1], block_size):
            block = score[:, start : start + block_size]
            flat = block.reshape(1, -1)
            mask[:, start : start + block_size] = lowest_k_mask(flat, _num_to_prune(sparsity, flat.numel())).reshape(
                block.shape
            )
        return mask
    raise ConfigError(f"granularity={granularity!r} is unknown; choose 'layer', 'row' or 'block'.")


def comparison_groups(d_out: int, d_in: int, granularity: str | None, block_size: int) -> int:
    """The most comparison groups a `(d_out, d_in)` matrix's mask is chosen in, each rounding its pruned count.

    `"layer"`: the matrix; `"block"`: each block of `block_size` input columns; `"row"`: each output row, and with
    an adaptive OBS mask (`methods.obs`) each row within each block, the larger count, which also bounds an unknown
    granularity.
    """
    blocks = math.ceil(d_in / block_size)
    if granularity == "layer":
        return 1
    if granularity == "block":
        return blocks
    return d_out * blocks
