"""`SavesCheckpoint`: `save_pretrained` and `push_to_hub` for a result that holds a pruned model (a pruning run's,
a recovery's). The result says how its folder is written (`_save`); writing on the main process only, the
temporary folder and the upload are the same for every result."""

from __future__ import annotations

import os
import tempfile
from typing import Any

from ..runtime.distributed import current_process_group, main_process_writes
from .hub import push_to_hub

__all__ = ["SavesCheckpoint", "PUSH_OPTIONS"]

PUSH_OPTIONS = ("private", "token", "revision", "create_pr", "commit_message", "max_retries", "retry_wait")


class SavesCheckpoint:
    """Mixin: a result with `model` and `tokenizer` that writes a pruned checkpoint with `_save`."""

    def _save(self, save_directory: str | os.PathLike, overwrite: bool, compressed: bool, **kwargs: Any) -> str:
        raise NotImplementedError

    def _commit_message(self) -> str | None:
        """The default commit message of `push_to_hub` (`None`: the Hub module's summary of the folder)."""
        return None

    def save_pretrained(
        self, save_directory: str | os.PathLike, overwrite: bool = False, *, compressed: bool = False, **kwargs: Any
    ) -> str:
        """Write the model as a plain transformers checkpoint with sparsity metadata (atomically).

        The folder also holds the tokenizer, `dpruner_config.json`, a model card (`README.md`) and the per-layer
        sparsity plot (with matplotlib installed).

        Args:
            save_directory (`str`): output folder; must not exist unless `overwrite=True`, and then only a folder this
                library wrote (or an empty one) is replaced.
            overwrite (`bool`, *optional*, defaults to `False`): replace an existing folder.
            compressed (`bool`, *optional*, defaults to `False`): store target matrices as bitmask + values (smaller
                on disk; load with `optimum_dpruner.load_pretrained`).
            sample_prompt (`str`, *optional*): a text the model continues greedily (`do_sample=False`, 32 new
                tokens) before the folder is written; the model card shows the continuation under the perplexities
                of `evaluation`. Nothing is generated without it.
            kwargs: passed to `optimum_dpruner.checkpoint.serialization.save_pruned` (`model_card`, `base_model`,
                `license`, `evaluation`, `max_shard_size`).

        Returns:
            `str`: the folder written.

        Raises:
            `ConfigError`: the folder exists and may not be replaced.

        Launched on several processes, only the main one writes; the others wait for it.
        """
        with main_process_writes() as is_main:
            if is_main:
                return self._save(save_directory, overwrite, compressed, **kwargs)
        return os.fspath(save_directory)

    def push_to_hub(self, repo_id: str, *, compressed: bool = False, **kwargs: Any) -> str:
        """Save to a temporary folder, then upload weights, metadata, card and plot to the Hub in one commit.

        Args:
            repo_id (`str`): `"namespace/name"`; the repository is created if needed.
            compressed (`bool`, *optional*, defaults to `False`): upload the compressed format.
            kwargs: the Hub options of `optimum_dpruner.push_to_hub` (`private`, `token`, `revision`, `create_pr`,
                `commit_message`, `max_retries`, `retry_wait`); the others go to `save_pretrained` (`base_model`,
                `license`, `evaluation`, `sample_prompt`...).

        Returns:
            `str`: the URL of the commit (or of the pull request); empty on processes other than the main one.

        Raises:
            `HubError`: 401/403 or errors left after the retries.
        """
        hub = {k: kwargs.pop(k) for k in PUSH_OPTIONS if k in kwargs}
        hub.setdefault("commit_message", self._commit_message())
        if not current_process_group().is_main_process:
            return ""
        with tempfile.TemporaryDirectory(prefix="dpruner-push-") as tmp:
            folder = self.save_pretrained(os.path.join(tmp, repo_id.split("/")[-1]), compressed=compressed, **kwargs)
            return push_to_hub(folder, repo_id, **hub)
