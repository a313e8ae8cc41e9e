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
from ..runtime.timers import StageTimer
from .base import LayerResult, PruningMethod
from .obs import factor_and_stack, obs_prune, obs_saliency, split_rows
from .registry import reconstructs, register_method
from .sparsegpt import SparseGPTMethod

__all__ = ["DPrunerMethod", "ImportanceWeightedOBS", "regularised_gradient", "taylor_importance", "OBSSaliency"]


def regularised_gradient(
    grad: torch.Tensor, general_importance: torch.Tensor | None, lambda_reg: float, alpha: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """g~ = g + 2 * lambda * alpha^2 * G * g^2 (fp32), and sum |g~ - g| = sum of the added term's magnitude (a 0-d
    tensor, so that no device sync is needed per call). No G: g~ = g."""
    grad = grad.float()
    scale = 2.0 * lambda_reg * alpha * alpha
    if scale == 0 or general_importance is None:
        return grad, grad.new_zeros(())
    term = general_importance.float() * scale
    term.mul_(grad.pow(2))
    size = term.abs().sum()
    return term.add_(grad), size


def taylor_importance(reg_grad: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """| -g~ * w + 1/2 * (g~ * w)^2 |, the contribution of one step to I (fp32)."""
    gw = reg_grad.float() * weight.float()
    # in place, with the same float operations (and so the same bits) as (-gw + 0.5 * gw.pow(2)).abs()
    return gw.pow(2).mul_(0.5).sub_(gw).abs_()


class OBSSaliency(SparseGPTMethod):
    """SparseGPT's saliency on the unmodified weights, no OBS update (D-Pruner's `general_importance="obs"`).

    Not registered: it is a stage of D-Pruner, not a pruning method of its own.
    """

    updates_weights = False
    changes_weights = False

    def prune_group(self, weights, statistic, timer=None):
        timer = timer or StageTimer()
        upper, stacked, slices = factor_and_stack(weights, statistic, self.config.damp, timer)
        saliency = obs_saliency(stacked, upper)
        return {
            name: LayerResult(weight, torch.zeros_like(weight, dtype=torch.bool), saliency[rows])
            for (name, weight), rows in zip(weights.items(), slices)
        }


class DualImportance:
    """D-Pruner's model-wide stage, shared by its variants: the general importance G (SparseGPT's or OBS saliency on
    the general windows, weights put back afterwards), then the dual importance I from regularised gradients on the
    domain windows; or both read from saved scores. The block walk then masks (and updates) from I.

    Args:
        importance (`dict[str, torch.Tensor]`, *optional*): I per target matrix name, when it is known already.
    """

    requires_domain_data = True
    accepts_scores = True
    own_options = ("mask_score", "general_importance", "importance_exponent", "lambda_reg", "alpha")

    def _set_importance(self, importance: dict[str, torch.Tensor] | None) -> None:
        self.importance = importance or {}

    def prepare(self, run, general, domain, importance=None) -> dict[str, dict[str, torch.Tensor]]:
        """Compute (or read) G and I; returns `{"G": ..., "I": ...}` for the result and `save_importance`."""
        config = self.config
        fingerprint = run.record_weights_fingerprint()
        if importance is not None:
            scores = run.saved_scores(importance, fingerprint)
        else:
            general_scores = self.general_importance(run, general)
            scores = {"G": general_scores or {}, "I": run.domain_importance(domain, general_scores)}
        self._set_importance(scores["I"])
        return scores

    def _saliency_method(self) -> PruningMethod | None:
        """The walk that gives G: SparseGPT's saliency as its OBS updates reach each block (`general_importance=
        "sparsegpt"`), the saliency of the unmodified weights (`"obs"`), or none (`"none"`)."""
        choice = self.config.general_importance
        if choice == "none":
            return None
        return (SparseGPTMethod if choice == "sparsegpt" else OBSSaliency)(self.config, keep_saliency=True)

    def preparation(self):
        saliency = self._saliency_method()
        return ([("general_importance", saliency)] if saliency is not None else []) + [("domain_importance", None)]

    def general_importance(self, run, general) -> dict[str, torch.Tensor] | None:
        """G of every target from the general windows (`None` with `general_importance="none"`); the model's weights
        are unchanged."""
        saliency = self._saliency_method()
        return run.saliency(saliency, general, "general_importance") if saliency is not None else None


class ImportanceWeightedOBS(DualImportance, SparseGPTMethod):
    """D-Pruner's reconstruction pass (`mask_score="saliency_x_importance"`): SparseGPT on the (mixed) calibration
    Hessian whose adaptive mask choice weighs each weight's OBS saliency by its domain importance,
    W^2 / U_jj^2 * (I / mean I)^gamma (gamma = `importance_exponent`; 0 is plain SparseGPT on the mixed windows).

    The saliency carries the general side (the mixed Hessian of the partially pruned model) and I the domain side;
    the product keeps weights that matter for either, and N:M choices stay local comparisons. Not registered: the
    "dpruner" method builds it when its config asks for it (`DPrunerMethod.from_config`).

    Args:
        config (`DPrunerConfig`): the run's options.
        importance (`dict[str, torch.Tensor]`, *optional*): I per target matrix name; else `prepare` computes it.
    """

    name = MethodName.DPRUNER.value
    stage_name = "reconstruction"

    def __init__(self, config, importance: dict[str, torch.Tensor] | None = None, keep_saliency: bool = False) -> None:
        super().__init__(config, keep_saliency)
        self._set_importance(importance)

    def prior(self, names, device: torch.device) -> torch.Tensor:
        """(I / mean I)^gamma of each matrix, stacked by rows."""
        gamma = self.config.importance_exponent
        parts = []
        for name in names:
            importance = self.importance[name].to(device=device, dtype=torch.float32)
            parts.append((importance / importance.mean().clamp_min(torch.finfo(torch.float32).tiny)).pow_(gamma))
        return torch.cat(parts)

    def prune_group(self, weights, statistic, timer=None):
        timer = timer or StageTimer()
        upper, stacked, slices = factor_and_stack(weights, statistic, self.config.damp, timer)
        new, mask, saliency = obs_prune(stacked, upper, spec=self.mask_spec(), block_size=self.config.block_size,
                                        row_groups=slices, return_saliency=self.keep_saliency, timer=timer,
                                        prior=self.prior(weights, upper.device))
        return split_rows(weights, slices, new, mask, saliency)


@register_method
class DPrunerMethod(DualImportance, PruningMethod):
    """D-Pruner (Zhang et al., NAACL 2024 Findings, arXiv 2405.06275).

    Statistics: G (general importance, one fp32 tensor the size of each target matrix, from SparseGPT on
    general data) and I (dual importance, the same size, accumulated from regularised gradients on domain
    data), both computed by `prepare` before the block walk. Score: I. Comparison group: the whole matrix by
    default (`granularity="layer"`, as the authors); `"block"` is the authors' "iterative blocking". Updates
    weights: only if `learning_rate > 0` (and then the mask goes to the pretrained weights unless
    `apply_mask_to="finetuned"`).

    Variants, chosen from the config by `from_config`: the library's recipe reconstructs (`reconstruction="obs"`,
    the default), with `ImportanceWeightedOBS` (`mask_score="saliency_x_importance"`, the default) or with this
    class's mask from I kept and the surviving weights updated by `ObsReconstruction` (`mask_score="importance"`);
    `DPrunerConfig.paper()` sets `reconstruction="none"`, the authors' method: this class alone, masks from I and
    no calibration pass in the block walk.

    Args:
        config (`DPrunerConfig`): the run's options.
        importance (`dict[str, torch.Tensor]`, *optional*): I per target matrix name; else `prepare` computes it.
    """

    name = MethodName.DPRUNER.value
    requires_data = False  # the block walk masks from I; the windows feed `prepare`
    default_granularity = "layer"
    default_reconstruction = "obs"
    stage_name = "masking"
    reconstructed_stage_name = "reconstruction"

    def __init__(self, config, importance: dict[str, torch.Tensor] | None = None, keep_saliency: bool = False) -> None:
        super().__init__(config, keep_saliency)
        self._set_importance(importance)

    @classmethod
    def from_config(cls, config) -> PruningMethod:
        if reconstructs(config) and config.mask_score == "saliency_x_importance":
            return ImportanceWeightedOBS(config)
        return cls(config)

    def score(self, name: str, weight: torch.Tensor, statistic: None) -> torch.Tensor:
        if name not in self.importance:
            raise RuntimeError(f"DPrunerMethod needs the dual importance I of {name}")
        return self.importance[name].to(device=weight.device, dtype=torch.float32)
