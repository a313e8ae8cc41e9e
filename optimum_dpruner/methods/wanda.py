"""Wanda: |W| times the L2 norm of each input feature over the calibration tokens."""

from __future__ import annotations

import torch

from ..configuration import MethodName
from .base import PruningMethod
from .registry import register_method
from .statistics import InputNorms

__all__ = ["WandaMethod"]


@register_method
class WandaMethod(PruningMethod):
    """Wanda (Sun et al. 2023, arXiv 2306.11695).

    Statistic: the (token-weighted) mean square of each input feature over the calibration tokens, `(d_in,)` fp32,
    shared by the linears that read the same input. Score: |W_ij| * ||X_j||_2 (up to a constant factor per matrix,
    which does not change a mask). Comparison group: each output row (`granularity="row"`). Updates weights: no.
    """

    name = MethodName.WANDA.value
    statistic = InputNorms
    default_granularity = "row"

    def score(self, name: str, weight: torch.Tensor, statistic: InputNorms) -> torch.Tensor:
        return weight.detach().float().abs() * statistic.value().sqrt().to(weight.device).unsqueeze(0)
