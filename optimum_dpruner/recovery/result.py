"""`RecoveryResult`: a recovered model with its tokenizer and report, saved or pushed like a `PruneResult`.

The folder written is the pruner's (`checkpoint.serialization.save_pruned`: atomic, plain transformers weights,
`dpruner_sparsity` metadata, model card), with the recovery recorded beside the pruning run: under `"recovery"`
in `dpruner_config.json` (the `RecoveryConfig`, the data fingerprints, steps and tokens seen, the sparsity check)
and as a "Recovery" section of the model card.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch import nn

from ..checkpoint.metadata import library_versions
from ..checkpoint.publishing import SavesCheckpoint
from ..configuration import DPrunerConfig
from ..stages.report import PruneReport, measure_sparsity
from .config import RecoveryConfig
from .report import RecoveryReport

__all__ = ["RecoveryResult"]


def _measure(model: nn.Module, prune_config: DPrunerConfig, targets: list[str], calibration: dict[str, Any]) -> PruneReport:
    """The sparsity part of a pruning report, measured on the recovered model, for `save_pruned`."""
    report = PruneReport(method=prune_config.method, pattern=prune_config.pattern, target_sparsity=prune_config.sparsity)
    report.matrices = measure_sparsity({name: model.get_submodule(name) for name in targets})
    report.fill_model_totals(model)
    report.extra["calibration"] = calibration
    return report


@dataclass
class RecoveryResult(SavesCheckpoint):
    """The outcome of `recover`: the recovered `model` (a plain transformers model, adapters merged), its
    `tokenizer`, the `report`, the `config` used and what is known of the pruning run.

    Args:
        prune_config (`DPrunerConfig`): the pruning run's recipe (from the checkpoint, or inferred from the
            sparsity metadata).
        calibration (`dict`): the pruning run's calibration fingerprints.
        base_model (`str`, *optional*): the unpruned model.
        targets (`list[str]`): the pruned target linears.
    """

    model: Any
    tokenizer: Any
    report: RecoveryReport
    config: RecoveryConfig
    prune_config: DPrunerConfig
    calibration: dict[str, Any] = field(default_factory=dict)
    base_model: str | None = None
    targets: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return str(self.report)

    def recovery_record(self) -> dict[str, Any]:
        """What the saved `dpruner_config.json` records of the recovery under `"recovery"`."""
        r = self.report
        versions = {k: v for k, v in library_versions().items()}
        try:
            from importlib.metadata import version

            versions["peft"] = version("peft")
        except Exception:  # noqa: BLE001 - peft is optional for a full-mode run
            pass
        return {
            "config": self.config.to_dict(),
            "data": r.data,
            "steps": r.steps,
            "tokens": r.tokens,
            "num_processes": r.num_processes,
            "final_loss": r.losses[-1][1] if r.losses else None,
            "first_loss": r.losses[0][1] if r.losses else None,
            "sparsity_before": round(r.sparsity_before, 6),
            "sparsity_after": round(r.sparsity_after, 6),
            "unmasked_after": r.unmasked_after,
            "seconds": round(r.seconds, 3),
            "library_versions": versions,
        }

    def _save(self, save_directory, overwrite, compressed, sample_prompt=None, **kwargs) -> str:
        from ..checkpoint.serialization import save_pruned
        from ..evaluation.generation import card_samples

        kwargs.setdefault("base_model", self.base_model)
        summary = _measure(self.model, self.prune_config, self.targets, self.calibration)
        return save_pruned(save_directory, self.model, self.tokenizer, self.prune_config, summary, overwrite=overwrite,
                           compressed=compressed, recovery=self.recovery_record(),
                           samples=card_samples(self.model, self.tokenizer, sample_prompt), **kwargs)

    def _commit_message(self) -> str:
        return f"Upload recovered model ({self.config.mode}, {self.report.tokens:,} tokens)"
