"""D-Pruner's maths: the regularised gradient, the dual importance, and the per-matrix masking from it.

Notation (per target matrix, `nn.Linear` layout `(d_out, d_in)`): W the weight, g = dL_NTP/dW on domain text,
G the general importance (SparseGPT/OBS saliency on general text), lambda the regulariser weight, alpha the
step size.

- Regularised loss: L_total = L_NTP + lambda * sum G * (w' - w)^2 with the SGD step w' - w = -alpha * g.
  Its gradient, as the authors implement it: g~ = g + 2 * lambda * alpha^2 * G * g^2 (the empirical-Fisher
  reading would give G * g^3; we follow the authors). Their fp16 loss-scale constants (/1000, /2000, a w^3
  term) act on loss-scaled gradients and have no meaning here, so they are not ported.
- Dual importance: second-order Taylor expansion of removing w (dw = -w) with the empirical Fisher for the
  Hessian diagonal: I = sum over steps of | -g~ * w + 1/2 * (g~ * w)^2 |.
"""

from __future__ import annotations

import torch

from ..configuration import MethodName
from .base import PruningMethod
from .registry import register_method
from .sparsegpt import SparseGPTMethod

__all__ = ["DPrunerMethod", "regularised_gradient", "taylor_importance", "OBSSaliency"]


def regularised_gradient(
    grad: torch.Tensor, general_importance: torch.Tensor, lambda_reg: float, alpha: float
) -> torch.Tensor:
    """g~ = g + 2 * lambda * alpha^2 * G * g^2 (fp32)."""
    grad = grad.float()
    return grad + (2.0 * lambda_reg * alpha * alpha) * general_importance.float() * grad.pow(2)


def taylor_importance(reg_grad: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """| -g~ * w + 1/2 * (g~ * w)^2 |, the contribution of one step to I (fp32)."""
    gw = reg_grad.float() * weight.float()
    return (-gw + 0.5 * gw.pow(2)).abs()


class OBSSaliency(SparseGPTMethod):
    """SparseGPT's saliency on the unmodified weights, no OBS update (D-Pruner's `general_importance="obs"`).

    Not registered: it is a stage of D-Pruner, not a pruning method of its own.
    """

    changes_weights = False

    def prune(self, weight: torch.Tensor):
        from .base import LayerResult

        saliency = self.score(weight)
        return LayerResult(weight=weight, mask=torch.zeros_like(saliency, dtype=torch.bool), saliency=saliency)


@register_method
class DPrunerMethod(PruningMethod):
    """D-Pruner (Zhang et al., NAACL 2024 Findings, arXiv 2405.06275).

    Statistics: G (general importance, one fp32 tensor the size of each target matrix, from SparseGPT on
    general data) and I (dual importance, the same size, accumulated from regularised gradients on domain
    data). Score: I. Comparison group: the whole matrix by default (`granularity="layer"`, as the authors);
    `"block"` is the authors' "iterative blocking". Updates weights: only if `learning_rate > 0` (and then the
    mask goes to the pretrained weights unless `apply_mask_to="finetuned"`); never reconstructs after masking.
    The stages are run by `optimum_dpruner.dual.run_dpruner`; this class masks one matrix from its I.
    """

    name = MethodName.DPRUNER.value
    requires_domain_data = True
    default_granularity = "layer"

    def __init__(self, weight: torch.Tensor, config, importance: torch.Tensor | None = None) -> None:
        super().__init__(weight, config)
        self.importance = importance

    def score(self, weight: torch.Tensor) -> torch.Tensor:
        if self.importance is None:
            raise RuntimeError("DPrunerMethod needs the dual importance I of its matrix")
        return self.importance.to(device=weight.device, dtype=torch.float32)
