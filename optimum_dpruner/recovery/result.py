"""`RecoveryResult`: a recovered model with its tokenizer and report, saved or pushed like a `PruneResult`.

The folder written is the pruner's (`checkpoint.serialization.save_pruned`: atomic, plain transformers weights,
`dpruner_sparsity` metadata, model card), with the recovery recorded beside the pruning run: under `"recovery"`
in `dpruner_config.json` (the `RecoveryConfig`, the data fingerprints, steps and tokens seen, the sparsity check)
and as a "Recovery" section of the model card.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..checkpoint.metadata import library_versions
from ..configuration import DPrunerConfig
from ..runtime.distributed import current_process_group
from .config import RecoveryConfig
from .report import RecoveryReport

__all__ = ["RecoveryResult"]


@dataclass
class _MatrixZeros:
    zeros: int
    numel: int
    shape: tuple[int, ...]

    @property
    def sparsity(self) -> float:
        return self.zeros / self.numel if self.numel else 0.0


@dataclass
class _SavedSparsity:
    """What `save_pruned` reads from a report: zeros per target matrix and over the whole model."""

    matrices: dict[str, _MatrixZeros]
    total_parameters: int
    total_zeros: int
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def sparsity(self) -> float:
        numel = sum(m.numel for m in self.matrices.values())
        return sum(m.zeros for m in self.matrices.values()) / numel if numel else 0.0

    @property
    def model_sparsity(self) -> float:
        return self.total_zeros / self.total_parameters if self.total_parameters else 0.0


@torch.no_grad()
def _measure(model: nn.Module, targets: list[str], calibration: dict[str, Any]) -> _SavedSparsity:
    matrices = {}
    for name in targets:
        w = model.get_submodule(name).weight
        matrices[name] = _MatrixZeros(int(w.eq(0).sum()), w.numel(), tuple(w.shape))
    params = {id(p): p for p in model.parameters()}.values()  # tied weights once
    return _SavedSparsity(matrices, sum(p.numel() for p in params), sum(int(p.eq(0).sum()) for p in params),
                          {"calibration": calibration})


@contextlib.contextmanager
def _main_process_writes() -> Iterator[bool]:
    group = current_process_group()
    try:
        yield group.is_main_process
    finally:
        group.barrier()


@dataclass
class RecoveryResult:
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

    def save_pretrained(self, save_directory: str | os.PathLike, overwrite: bool = False, *, compressed: bool = False,
                        **kwargs: Any) -> str:
        """Write the recovered model as a pruned checkpoint (atomically), with the recovery recorded.

        Args:
            save_directory (`str`): output folder; must not exist unless `overwrite=True`, and then only a folder this
                library wrote (or an empty one) is replaced.
            overwrite (`bool`, *optional*, defaults to `False`): replace an existing folder.
            compressed (`bool`, *optional*, defaults to `False`): store target matrices as bitmask + values.
            kwargs: passed to `checkpoint.serialization.save_pruned` (`model_card`, `license`, `evaluation`, ...).

        Raises:
            `ConfigError`: the folder exists and may not be replaced.
        """
        from ..checkpoint.serialization import save_pruned

        kwargs.setdefault("base_model", self.base_model)
        with _main_process_writes() as is_main:
            if is_main:
                summary = _measure(self.model, self.targets, self.calibration)
                return save_pruned(save_directory, self.model, self.tokenizer, self.prune_config, summary,
                                   overwrite=overwrite, compressed=compressed, recovery=self.recovery_record(), **kwargs)
        return os.fspath(save_directory)

    def push_to_hub(self, repo_id: str, *, private: bool | None = None, token: str | None = None,
                    revision: str | None = None, create_pr: bool = False, commit_message: str | None = None,
                    compressed: bool = False, max_retries: int = 5, **save_kwargs: Any) -> str:
        """Save to a temporary folder, then upload it to the Hub in one commit (see `PruneResult.push_to_hub`)."""
        import tempfile

        from ..checkpoint.hub import push_to_hub

        if not current_process_group().is_main_process:
            return ""
        with tempfile.TemporaryDirectory(prefix="dpruner-push-") as tmp:
            folder = self.save_pretrained(os.path.join(tmp, repo_id.split("/")[-1]), compressed=compressed, **save_kwargs)
            return push_to_hub(folder, repo_id, private=private, token=token, revision=revision, create_pr=create_pr,
                               commit_message=commit_message or f"Upload recovered model ({self.config.mode}, "
                               f"{self.report.tokens:,} tokens)", max_retries=max_retries)
