"""Magnitude pruning: drop the weights of smallest |W|, per matrix by default. Needs no data."""

from __future__ import annotations

import torch

from ..configuration import MethodName
from .base import PruningMethod
from .registry import register_method

__all__ = ["MagnitudeMethod"]


@register_method
class MagnitudeMethod(PruningMethod):
    """Magnitude pruning (the classic baseline; Han et al. 2015).

    Statistic: none. Score: |W|. Comparison group: the whole matrix (`granularity="layer"`).
    Updates weights: no.
    """

    name = MethodName.MAGNITUDE.value
    requires_data = False
    default_granularity = "layer"

    def score(self, name: str, weight: torch.Tensor, statistic: None) -> torch.Tensor:
        return weight.detach().float().abs()
