"""`Run`: one pruning run's model, targets, config, report and timers, and the model-wide stages a method's `prepare`
may use: a saliency pass over the blocks, D-Pruner's domain-gradient pass, saved scores. The block walk that every
method ends with goes through `Run.walk`."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..checkpoint.importance import load_importance, weights_fingerprint
from ..configuration import DPrunerConfig
from ..errors import ConfigError
from ..runtime.distributed import current_process_group
from ..runtime.memory import StageMonitor
from ..runtime.offload import accelerate_offloaded, onloaded, parameter_value, writable
from ..runtime.sharding import sharded_replica
from ..runtime.timers import StageTimer
from .capture import execution_device
from .checks import check_importance_model, check_scores_fit
from .domain_gradients import collect_dual_importance
from .walk import prune_blockwise

__all__ = ["Run"]

logger = logging.getLogger(__name__)


@dataclass
class Run:
    """One run of `DPruner.prune`: what its stages read and where they report.

    Args:
        model (`nn.Module`): the causal LM, pruned in place.
        targets (`dict[str, nn.Linear]`): the target linears by full module name.
        config (`DPrunerConfig`): the run's options.
        report (`PruneReport`): receives stage seconds and peak memory (through `monitor`) and `extra` figures.
        progress (`bool`): show progress bars.
        monitor (`StageMonitor`): times each stage and samples its peak memory.
        timer (`StageTimer`): the seconds of each step inside the stages.
    """

    model: nn.Module
    targets: dict[str, nn.Linear]
    config: DPrunerConfig
    report: Any
    progress: bool = True
    monitor: StageMonitor = field(default_factory=StageMonitor)
    timer: StageTimer = field(default_factory=StageTimer)

    def walk(self, method, samples: list[torch.Tensor] | None, sample_weights: Sequence[float] | None = None) -> None:
        """The block walk that prunes every target with `method`, timed as the method's stage."""
        with self.monitor.measure(self.report, method.stage_name):
            prune_blockwise(self.model, samples, method, self.config, progress=self.progress,
                            sample_weights=sample_weights, timer=self.timer)

    def saliency(self, method, samples: list[torch.Tensor], stage: str) -> dict[str, torch.Tensor]:
        """Each target's saliency under `method` (built with `keep_saliency=True`), block by block with the pruned
        outputs propagated, then the original weights put back: the model is unchanged. Stored in the config's
        `importance_dtype` on `importance_device`; every process keeps the main process's copy."""
        config = self.config
        dtype = getattr(torch, config.importance_dtype)
        scores: dict[str, torch.Tensor] = {}

        def keep(name: str, result) -> None:
            scores[name] = result.saliency.to(device=config.importance_device or result.saliency.device, dtype=dtype)

        with self.monitor.measure(self.report, stage):
            prune_blockwise(self.model, samples, method, config, on_layer=keep, restore_weights=True,
                            progress=self.progress, timer=self.timer)
            group = current_process_group()
            for value in scores.values():
                group.broadcast_(value)
        return scores

    def domain_importance(
        self, samples: list[torch.Tensor], general: dict[str, torch.Tensor] | None
    ) -> dict[str, torch.Tensor]:
        """D-Pruner's dual importance I from regularised gradients on the domain `samples`
        (`stages.domain_gradients`), with `general` (G) as the regulariser's weights (`None`: no regulariser).

        With `learning_rate > 0` the pass takes SGD steps; the pretrained weights are put back afterwards unless
        `apply_mask_to="finetuned"`. Adds to `report.extra`: the regulariser's relative size |g~ - g| / |g| per
        matrix (`regulariser_ratio`) and its mean (`regulariser_ratio_mean`), the domain losses and the parallelism.
        """
        config, model, targets = self.config, self.model, self.targets
        group = current_process_group()
        pretrained = None
        if config.learning_rate > 0 and config.apply_mask_to == "pretrained":
            pretrained = {n: parameter_value(m).to("cpu", copy=True) for n, m in targets.items()}
        device = execution_device(model, config)
        with self.monitor.measure(self.report, "domain_importance"):
            self.report.extra["domain_parallelism"] = config.domain_parallelism if group.is_distributed else "none"
            if config.domain_parallelism == "fsdp" and group.is_distributed:  # 1/N of the model on each device
                if accelerate_offloaded(model):
                    raise ConfigError(
                        "domain_parallelism='fsdp' reads the model's weights from memory; a model with weights "
                        "offloaded by accelerate (device_map / offload_folder) is not supported there yet: load it in "
                        "CPU RAM."
                    )
                with sharded_replica(model, list(targets), group, device, write_back=config.learning_rate > 0) as replica:
                    modules = dict(replica.named_modules())
                    stats = collect_dual_importance(replica, samples, {n: modules[n] for n in targets}, general,
                                                    config, self.progress, group, sharded=True, timer=self.timer)
            else:  # the gradient pass needs the whole model on the execution device
                with onloaded(model, device):
                    stats = collect_dual_importance(model, samples, targets, general, config, self.progress, group,
                                                    timer=self.timer)
        if pretrained is not None:
            with torch.no_grad():
                for name, module in targets.items():
                    with writable(module):
                        module.weight.data.copy_(pretrained[name])
        ratios = stats.regulariser_ratio()
        self.report.extra["regulariser_ratio"] = ratios
        self.report.extra["regulariser_ratio_mean"] = sum(ratios.values()) / len(ratios)
        self.report.extra["domain_losses"] = stats.losses
        logger.info("regulariser |g~ - g| / |g|: mean %.3e", self.report.extra["regulariser_ratio_mean"])
        return stats.importance

    def record_weights_fingerprint(self) -> str:
        """The targets' weights fingerprint (`checkpoint.importance.weights_fingerprint`), kept in the report so
        that saved scores carry it."""
        fingerprint = weights_fingerprint(self.targets)
        self.report.extra["model_fingerprint"] = {"sha256": fingerprint}
        return fingerprint

    def saved_scores(self, importance: str | os.PathLike | dict, fingerprint: str) -> dict[str, dict[str, torch.Tensor]]:
        """Scores written by `save_importance` (or the dict `result.importance`), checked to belong to this model."""
        check_importance_model(importance, fingerprint)
        scores = importance if isinstance(importance, dict) else load_importance(importance)
        check_scores_fit(scores["I"], self.targets)
        return scores
