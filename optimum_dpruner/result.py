"""`PruneResult`: what a pruning run returns (model, tokenizer, report, config), and how it is saved or pushed."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch

from .report import PruneReport
from .runtime.distributed import current_process_group

__all__ = ["PruneResult"]


@contextlib.contextmanager
def _main_process_writes() -> Iterator[bool]:
    """Yield whether this process should write; on exit (error or not) every process waits for the main one."""
    group = current_process_group()
    try:
        yield group.is_main_process
    finally:
        group.barrier()


@dataclass
class PruneResult:
    """The outcome of `DPruner.prune`: the pruned `model`, its `tokenizer`, the `report` and the `config` used.

    `importance` holds D-Pruner's scores (`{"G": {...}, "I": {...}}`) when the method computed them.
    """

    model: Any
    tokenizer: Any
    report: PruneReport
    config: Any
    importance: dict[str, dict[str, torch.Tensor]] | None = None

    def __str__(self) -> str:
        return str(self.report)

    def save_pretrained(
        self, save_directory: str | os.PathLike, overwrite: bool = False, *, compressed: bool = False, **kwargs: Any
    ) -> str:
        """Write the pruned model as a plain transformers checkpoint with sparsity metadata (atomically).

        The folder also holds the tokenizer, `dpruner_config.json`, a model card (`README.md`) and the per-layer
        sparsity plot.

        Args:
            save_directory (`str`): output folder; must not exist unless `overwrite=True`.
            overwrite (`bool`, *optional*, defaults to `False`): replace an existing folder.
            compressed (`bool`, *optional*, defaults to `False`): store target matrices as bitmask + values (smaller
                on disk; load with `optimum_dpruner.load_pretrained`).
            kwargs: passed to `optimum_dpruner.checkpoint.serialization.save_pruned` (`model_card`, `base_model`, `license`,
                `evaluation`, `max_shard_size`).

        Returns:
            `str`: the folder written.

        Raises:
            `ConfigError`: the folder exists and `overwrite` is `False`.

        Launched on several processes, only the main one writes; the others wait for it.
        """
        from .checkpoint.serialization import save_pruned

        with _main_process_writes() as is_main:
            if is_main:
                return save_pruned(
                    save_directory, self.model, self.tokenizer, self.config, self.report, overwrite=overwrite,
                    compressed=compressed, **kwargs
                )
        return os.fspath(save_directory)

    def push_to_hub(
        self,
        repo_id: str,
        *,
        private: bool | None = None,
        token: str | None = None,
        revision: str | None = None,
        create_pr: bool = False,
        commit_message: str | None = None,
        compressed: bool = False,
        max_retries: int = 5,
        **save_kwargs: Any,
    ) -> str:
        """Save to a temporary folder, then upload weights, metadata, card and plot to the Hub in one commit.

        Args:
            repo_id (`str`): `"namespace/name"`; the repository is created if needed.
            private (`bool`, *optional*): visibility of a newly created repository.
            token (`str`, *optional*): a write token; defaults to `HF_TOKEN` or the token of `hf auth login`.
            revision (`str`, *optional*): branch to commit to; default `main`.
            create_pr (`bool`, *optional*, defaults to `False`): open a pull request instead.
            commit_message (`str`, *optional*): defaults to a summary of the method and sparsity.
            compressed (`bool`, *optional*, defaults to `False`): upload the compressed format.
            max_retries (`int`, *optional*, defaults to 5): retries after 5xx answers or connection errors.
            save_kwargs: passed to `save_pretrained` (`base_model`, `license`, `evaluation`...).

        Returns:
            `str`: the URL of the commit (or of the pull request); empty on processes other than the main one.

        Raises:
            `HubError`: 401/403 or errors left after the retries.
        """
        import tempfile

        from .checkpoint.hub import push_to_hub

        if not current_process_group().is_main_process:
            return ""
        with tempfile.TemporaryDirectory(prefix="dpruner-push-") as tmp:
            folder = self.save_pretrained(
                os.path.join(tmp, repo_id.split("/")[-1]), compressed=compressed, **save_kwargs
            )
            return push_to_hub(
                folder,
                repo_id,
                private=private,
                token=token,
                revision=revision,
                create_pr=create_pr,
                commit_message=commit_message,
                max_retries=max_retries,
            )

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
        with _main_process_writes() as is_main:
            if is_main:
                fingerprint = (self.report.extra.get("model_fingerprint") or {}).get("sha256")  # checked on reuse
                metadata = {"config": self.config.to_dict(), "model_fingerprint": fingerprint}
                return save_importance(path, self.importance, metadata, overwrite, protected=protected)
        return os.fspath(path)
