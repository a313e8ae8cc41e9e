"""D-Pruner's stages, in order: general importance G, domain importance I with the regularised loss, masks."""

from __future__ import annotations

import logging

import torch
from torch import nn

from ..configuration import DPrunerConfig
from ..runtime.distributed import current_process_group
from ..errors import ConfigError
from .domain_gradients import collect_dual_importance
from ..methods.base import LayerResult
from ..methods.dpruner import DPrunerMethod, OBSSaliency
from ..methods.sparsegpt import SparseGPTMethod
from ..runtime.offload import accelerate_offloaded, onloaded, parameter_value, writable
from .capture import execution_device
from .walk import prune_blockwise
from ..runtime.timers import StageTimer
from ..runtime.memory import StageMonitor
from ..runtime.sharding import sharded_replica

__all__ = ["general_importance", "run_dpruner", "apply_importance_masks"]

logger = logging.getLogger(__name__)


def general_importance(
    model: nn.Module, samples: list[torch.Tensor], config: DPrunerConfig, progress: bool = True,
    timer: StageTimer | None = None,
) -> dict[str, torch.Tensor]:
    """Step 1: G for every target matrix, from general calibration samples; the model's weights are unchanged.

    `general_importance="sparsegpt"` runs SparseGPT block by block (OBS updates, pruned outputs propagated)
    and keeps each block's saliency, then puts the original weights back; `"obs"` takes the saliency of the
    unmodified weights in one pass.
    """
    dtype = getattr(torch, config.importance_dtype)
    scores: dict[str, torch.Tensor] = {}

    def keep(name: str, result: LayerResult) -> None:
        scores[name] = result.saliency.to(device=config.importance_device or result.saliency.device, dtype=dtype)

    method_cls = SparseGPTMethod if config.general_importance == "sparsegpt" else OBSSaliency
    prune_blockwise(model, samples, method_cls(config, keep_saliency=True), config, on_layer=keep,
                    restore_weights=True, progress=progress, timer=timer)
    return scores


@torch.no_grad()
def apply_importance_masks(targets: dict[str, nn.Linear], importance: dict[str, torch.Tensor], config: DPrunerConfig) -> None:
    """Step 4: zero the lowest-I weights of each target (no reconstruction)."""
    missing = [n for n in targets if n not in importance]
    if missing:
        raise ConfigError(
            f"the importance scores lack {len(missing)} target matrices (e.g. {missing[0]}); they were computed for "
            "another model or other targets: recompute them or match `targets`/`ignore`."
        )
    method = DPrunerMethod(config, importance=importance)
    for name, module in targets.items():
        if tuple(importance[name].shape) != tuple(module.weight.shape):
            raise ConfigError(
                f"importance for {name} has shape {tuple(importance[name].shape)}, the weight {tuple(module.weight.shape)}; "
                "the scores belong to another model."
            )
        with writable(module):
            result = method.prune_group({name: module.weight.data}, None)[name]
            module.weight.data.copy_(result.weight)


def run_dpruner(
    model: nn.Module,
    targets: dict[str, nn.Linear],
    general_samples: list[torch.Tensor],
    domain_samples: list[torch.Tensor],
    config: DPrunerConfig,
    report,
    monitor: StageMonitor,
    progress: bool = True,
    timer: StageTimer | None = None,
) -> dict[str, dict[str, torch.Tensor]]:
    """Steps 1-3 of D-Pruner (masks are applied by the caller); returns `{"G": ..., "I": ...}`.

    Adds to `report.extra`: the regulariser's relative size |g~ - g| / |g| per matrix (`regulariser_ratio`) and
    its mean (`regulariser_ratio_mean`), and the domain losses.
    """
    group = current_process_group()
    general = None
    if config.general_importance != "none":
        with monitor.measure(report, "general_importance"):
            general = general_importance(model, general_samples, config, progress, timer)
            for scores in general.values():  # every process computed G; the main process's copy makes them equal
                group.broadcast_(scores)
    pretrained = None
    if config.learning_rate > 0 and config.apply_mask_to == "pretrained":
        pretrained = {n: parameter_value(m).to("cpu", copy=True) for n, m in targets.items()}
    device = execution_device(model, config)
    with monitor.measure(report, "domain_importance"):
        report.extra["domain_parallelism"] = config.domain_parallelism if group.is_distributed else "none"
        if config.domain_parallelism == "fsdp" and group.is_distributed:  # 1/N of the model on each device
            if accelerate_offloaded(model):
                raise ConfigError(
                    "domain_parallelism='fsdp' reads the model's weights from memory; a model with weights offloaded "
                    "by accelerate (device_map / offload_folder) is not supported there yet: load it in CPU RAM."
                )
            with sharded_replica(model, list(targets), group, device, write_back=config.learning_rate > 0) as replica:
                modules = dict(replica.named_modules())
                stats = collect_dual_importance(replica, domain_samples, {n: modules[n] for n in targets}, general,
                                                config, progress, group, sharded=True, timer=timer)
        else:  # the gradient pass needs the whole model on the execution device
            with onloaded(model, device):
                stats = collect_dual_importance(model, domain_samples, targets, general, config, progress, group,
                                                timer=timer)
    if pretrained is not None:
        with torch.no_grad():
            for name, module in targets.items():
                with writable(module):
                    module.weight.data.copy_(pretrained[name])
    ratios = stats.regulariser_ratio()
    report.extra["regulariser_ratio"] = ratios
    report.extra["regulariser_ratio_mean"] = sum(ratios.values()) / len(ratios)
    report.extra["domain_losses"] = stats.losses
    logger.info("regulariser |g~ - g| / |g|: mean %.3e", report.extra["regulariser_ratio_mean"])
    return {"G": general or {}, "I": stats.importance}
