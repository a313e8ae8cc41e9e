"""Wanda: |W| times the L2 norm of each input feature over the calibration tokens."""

from __future__ import annotations

import torch

from ..configuration import MethodName
from .base import PruningMethod
from .registry import register_method

__all__ = ["WandaMethod"]


@register_method
class WandaMethod(PruningMethod):
    """Wanda (Sun et al. 2023, arXiv 2306.11695).

    Statistic: the sum of squares of each input feature over all calibration tokens, `(d_in,)` fp32.
    Score: |W_ij| * ||X_j||_2. Comparison group: each output row (`granularity="row"`). Updates weights: no.
    """

    name = MethodName.WANDA.value
    default_granularity = "row"

    def __init__(self, weight: torch.Tensor, config) -> None:
        super().__init__(weight, config)
        self.sq_norms = torch.zeros(weight.shape[1], dtype=torch.float32, device=weight.device)

    def add_batch(self, x: torch.Tensor) -> None:
        x = x.reshape(-1, x.shape[-1]).to(device=self.sq_norms.device, dtype=torch.float32)
        self.sq_norms += (x * x).sum(dim=0)

    def score(self, weight: torch.Tensor) -> torch.Tensor:
        return weight.detach().float().abs() * self.sq_norms.sqrt().unsqueeze(0)

    def free(self) -> None:
        del self.sq_norms
