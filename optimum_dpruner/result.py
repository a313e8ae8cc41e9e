"""`PruneResult`: what a pruning run returns (model, tokenizer, report, config), and how it is saved or pushed."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch

from .stages.report import PruneReport
from .checkpoint.publishing import SavesCheckpoint
from .runtime.distributed import main_process_writes

__all__ = ["PruneResult"]


@dataclass
class PruneResult(SavesCheckpoint):
    """The outcome of `DPruner.prune`: the pruned `model`, its `tokenizer`, the `report` and the `config` used;
    `save_pretrained` and `push_to_hub` write it (`checkpoint.publishing.SavesCheckpoint`).

    `importance` holds D-Pruner's scores (`{"G": {...}, "I": {...}}`) when the method computed them.
    """

    model: Any
    tokenizer: Any
    report: PruneReport
    config: Any
    importance: dict[str, dict[str, torch.Tensor]] | None = None

    def __str__(self) -> str:
        return str(self.report)

    def _save(self, save_directory, overwrite, compressed, sample_prompt=None, **kwargs) -> str:
        from .checkpoint.serialization import save_pruned
        from .evaluation.generation import card_samples

        return save_pruned(save_directory, self.model, self.tokenizer, self.config, self.report, overwrite=overwrite,
                           compressed=compressed, samples=card_samples(self.model, self.tokenizer, sample_prompt), **kwargs)

    def recover(self, general_ds: Any = None, domain_ds: Any = None, config: Any = None, **kwargs: Any):
        """Fine-tune the pruned model (in place) while every pruned weight stays zero: `optimum_dpruner.recover` with
        this result's model, tokenizer and pruning record. Returns a `RecoveryResult` (`.model`, `.report`,
        `save_pretrained`, `push_to_hub`); `kwargs` go to `recover` (`teacher`, `eval_ds`, `output_dir`, ...)."""
        from .recovery.run import recover

        kwargs.setdefault("base_model", getattr(self.model.config, "_name_or_path", None) or None)
        return recover(self.model, general_ds, domain_ds, config, tokenizer=self.tokenizer, prune_config=self.config,
                       calibration=self.report.extra.get("calibration", {}), **kwargs)

    def save_importance(self, path: str | os.PathLike, overwrite: bool = False) -> str:
        """Save D-Pruner's G and I so that other sparsities or patterns need no new pass over data.

        Never into a model folder (the one the model was loaded from, a saved checkpoint), never over a file this
        library did not write, and over earlier scores only with `overwrite=True`.

        Raises:
            `ConfigError`: the method computed no scores, or `path` may not be written.
        """
        from .checkpoint.importance import save_importance
        from .errors import ConfigError

        if self.importance is None:
            raise ConfigError(f"method={self.report.method!r} computes no importance scores to save; use method='dpruner'.")
        source = getattr(self.model, "name_or_path", None)
        protected = {source: "the folder the model was loaded from"} if isinstance(source, str) and os.path.isdir(source) else {}
        with main_process_writes() as is_main:
            if is_main:
                fingerprint = (self.report.extra.get("model_fingerprint") or {}).get("sha256")  # checked on reuse
                metadata = {"config": self.config.to_recipe_dict(), "model_fingerprint": fingerprint}
                return save_importance(path, self.importance, metadata, overwrite, protected=protected)
        return os.fspath(path)
