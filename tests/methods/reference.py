"""Straightforward reference implementations, to check the library's faster code against.

They are the library's code as it was before the speed work (issue 15): one statistic per matrix fed by its own
hook, SparseGPT's OBS loop column by column on one matrix with the three-step inverse-Hessian factor, and the plain
block walk. Slow and obviously right; used only by tests.
"""

from __future__ import annotations

import math

import torch

from optimum_dpruner.stages import capture_block_inputs
from optimum_dpruner.runtime.hooks import HookManager
from optimum_dpruner.methods.masks import nm_mask, prune_mask
from optimum_dpruner.models.loading import find_decoder_blocks, find_target_linears


def reference_upper(hessian: torch.Tensor, damp: float) -> torch.Tensor:
    """Cholesky of H, its inverse, then the upper Cholesky factor of that (SparseGPT's reference recipe)."""
    eye = torch.eye(hessian.shape[0], dtype=hessian.dtype)
    lower = torch.linalg.cholesky(hessian + damp * hessian.diagonal().mean() * eye)
    return torch.linalg.cholesky(torch.cholesky_inverse(lower), upper=True)


def reference_sparsegpt(weight, hessian, sparsity, granularity="block", nm=None, block_size=128, damp=0.01):
    """SparseGPT on one matrix: `(new weight, mask, saliency)`."""
    w = weight.detach().float().clone()
    hessian = hessian.clone()
    dead = hessian.diagonal() == 0
    hessian.diagonal()[dead] = 1.0
    w[:, dead] = 0.0
    upper = reference_upper(hessian, damp)
    d_in = w.shape[1]
    inv_diag = upper.diagonal()
    mask = torch.zeros_like(w, dtype=torch.bool)
    saliency = torch.empty_like(w)
    if nm is None and granularity == "layer":
        mask = prune_mask(w.pow(2) / inv_diag.pow(2).unsqueeze(0), sparsity, "layer")
    for i1 in range(0, d_in, block_size):
        i2 = min(i1 + block_size, d_in)
        w1 = w[:, i1:i2].clone()
        u1 = upper[i1:i2, i1:i2]
        block_saliency = w1.pow(2) / u1.diagonal().pow(2).unsqueeze(0)
        saliency[:, i1:i2] = block_saliency
        if nm is None and granularity != "layer":
            mask[:, i1:i2] = prune_mask(block_saliency, sparsity, "layer" if granularity == "block" else "row")
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
    w[mask] = 0.0
    return w, mask, saliency


class _RunningHessian:
    """H = (2/N) sum x x^T as a running mean (the pre-speed-work statistic)."""

    def __init__(self, d_in):
        self.matrix = torch.zeros(d_in, d_in)
        self.n = 0

    def add(self, x):
        x = x.reshape(-1, x.shape[-1]).float()
        total = self.n + x.shape[0]
        self.matrix *= self.n / total
        self.n = total
        x = x * math.sqrt(2.0 / total)
        self.matrix += x.T @ x


class _SquareSums:
    def __init__(self, d_in):
        self.sums = torch.zeros(d_in)

    def add(self, x):
        x = x.reshape(-1, x.shape[-1]).float()
        self.sums += (x * x).sum(0)


@torch.no_grad()
def reference_prune(model, samples, method, config):
    """The plain block walk with one statistic per matrix; prunes `model` in place (method: magnitude, wanda,
    sparsegpt)."""
    blocks = find_decoder_blocks(model)
    inputs = capture_block_inputs(model, blocks, samples, progress=False) if method != "magnitude" else None
    granularity = config.granularity or {"magnitude": "layer", "wanda": "row", "sparsegpt": "block"}[method]
    for index, block in enumerate(blocks.blocks):
        targets = find_target_linears(block, f"{blocks.name}.{index}", config.targets, config.ignore)
        stats = {}
        if inputs is not None:
            stats = {n: (_RunningHessian if method == "sparsegpt" else _SquareSums)(m.weight.shape[1]) for n, m in targets.items()}
            with HookManager() as hooks:
                for name, module in targets.items():
                    hooks.add_forward_hook(module, lambda m, a, o, _n=name: stats[_n].add(a[0]))
                for s in range(len(inputs.hidden)):
                    inputs.run_block(block, index, s)
        for name, module in targets.items():
            w = module.weight.data
            if method == "sparsegpt":
                new, _, _ = reference_sparsegpt(w, stats[name].matrix, config.sparsity, granularity, config.nm,
                                                config.block_size, config.damp)
            else:
                score = w.abs() if method == "magnitude" else w.abs() * stats[name].sums.sqrt().unsqueeze(0)
                new = w.masked_fill(prune_mask(score, config.sparsity, granularity, config.nm, config.block_size), 0)
            module.weight.data.copy_(new)
        if inputs is not None:
            inputs.hidden = [inputs.run_block(block, index, s) for s in range(len(inputs.hidden))]
