"""`PruneResult` and `PruneReport`: what a pruning run returns, and how each stage is timed and measured."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from .distributed import current_process_group
from .offload import parameter_value

__all__ = ["PruneReport", "PruneResult", "MatrixSparsity", "measure_sparsity", "StageMonitor", "current_rss"]


def current_rss() -> int:
    """Resident set size of this process in bytes (Linux `/proc`; 0 where unavailable)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


class StageMonitor:
    """Times a stage and records its peak memory: process RSS sampled every 20 ms, and on CUDA the peak allocated."""

    def __init__(self, interval: float = 0.02) -> None:
        self.interval = interval

    @contextlib.contextmanager
    def measure(self, report: "PruneReport", stage: str) -> Iterator[None]:
        peak = [current_rss()]
        stop = threading.Event()

        def sample() -> None:
            while not stop.wait(self.interval):
                peak[0] = max(peak[0], current_rss())

        thread = threading.Thread(target=sample, daemon=True)
        thread.start()
        cuda = torch.cuda.is_available()
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        try:
            yield
        finally:
            elapsed = time.perf_counter() - start
            stop.set()
            thread.join()
            peak[0] = max(peak[0], current_rss())
            report.stage_seconds[stage] = report.stage_seconds.get(stage, 0.0) + elapsed
            report.peak_rss_bytes[stage] = max(report.peak_rss_bytes.get(stage, 0), peak[0])
            if cuda:
                report.peak_cuda_bytes[stage] = torch.cuda.max_memory_allocated()


@dataclass
class MatrixSparsity:
    """Zeros and size of one target matrix."""

    zeros: int
    numel: int
    shape: tuple[int, ...]

    @property
    def sparsity(self) -> float:
        return self.zeros / self.numel if self.numel else 0.0


def measure_sparsity(targets: dict[str, nn.Linear]) -> dict[str, MatrixSparsity]:
    """Exact zeros of each target matrix."""
    weights = {name: parameter_value(m) for name, m in targets.items()}  # offloaded ones read through accelerate
    return {name: MatrixSparsity(int((w == 0).sum().item()), w.numel(), tuple(w.shape)) for name, w in weights.items()}


@dataclass
class PruneReport:
    """What a run achieved and cost.

    Args:
        method (`str`): the pruning method.
        pattern (`str`): `"unstructured"` or `"N:M"`.
        target_sparsity (`float`): the requested sparsity.
        matrices (`dict[str, MatrixSparsity]`): zeros per target matrix, after pruning.
        total_parameters (`int`): all parameters of the model (shared weights counted once).
        total_zeros (`int`): zeros among them.
        stage_seconds (`dict[str, float]`): wall time of each stage.
        breakdown (`dict[str, float]`): wall time of the steps inside the stages (`profiling.StageTimer`):
            `calibration_data`, `capture`, `forward` (block forwards of the statistics pass), `statistics`,
            `factorisation`, `mask_selection`, `obs_update`, `propagation`, `domain_forward`, `domain_backward`,
            `domain_scoring`, `masking`; each step a method does not take is absent.
        peak_rss_bytes (`dict[str, int]`): peak resident memory of the process during each stage.
        peak_cuda_bytes (`dict[str, int]`): peak CUDA memory allocated during each stage (CUDA only).
        extra (`dict[str, Any]`): method-specific figures (e.g. D-Pruner's regulariser ratio per layer).
    """

    method: str
    pattern: str
    target_sparsity: float
    matrices: dict[str, MatrixSparsity] = field(default_factory=dict)
    total_parameters: int = 0
    total_zeros: int = 0
    stage_seconds: dict[str, float] = field(default_factory=dict)
    breakdown: dict[str, float] = field(default_factory=dict)
    peak_rss_bytes: dict[str, int] = field(default_factory=dict)
    peak_cuda_bytes: dict[str, int] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def target_zeros(self) -> int:
        return sum(m.zeros for m in self.matrices.values())

    @property
    def target_numel(self) -> int:
        return sum(m.numel for m in self.matrices.values())

    @property
    def sparsity(self) -> float:
        """Fraction of zeros among the target matrices."""
        return self.target_zeros / self.target_numel if self.target_numel else 0.0

    @property
    def model_sparsity(self) -> float:
        """Fraction of zeros among all parameters (embeddings and norms included)."""
        return self.total_zeros / self.total_parameters if self.total_parameters else 0.0

    def fill_model_totals(self, model: nn.Module) -> None:
        seen: set[int] = set()  # tied weights once
        self.total_parameters = self.total_zeros = 0
        for module in model.modules():
            for name, param in module.named_parameters(recurse=False):
                if id(param) not in seen:
                    seen.add(id(param))
                    value = parameter_value(module, name)  # offloaded ones read through accelerate
                    self.total_parameters += value.numel()
                    self.total_zeros += int((value == 0).sum().item())

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "pattern": self.pattern,
            "target_sparsity": self.target_sparsity,
            "sparsity": self.sparsity,
            "model_sparsity": self.model_sparsity,
            "matrices": {n: {"zeros": m.zeros, "numel": m.numel, "sparsity": m.sparsity} for n, m in self.matrices.items()},
            "stage_seconds": dict(self.stage_seconds),
            "breakdown": dict(self.breakdown),
            "peak_rss_bytes": dict(self.peak_rss_bytes),
            "peak_cuda_bytes": dict(self.peak_cuda_bytes),
            "extra": self.extra,
        }

    def table(self, max_rows: int | None = None) -> str:
        """The report as plain-text tables (per matrix, then per stage)."""
        lines = [f"method={self.method} pattern={self.pattern} target sparsity={self.target_sparsity:.4f}", ""]
        width = max([len(n) for n in self.matrices] + [6])
        lines.append(f"{'matrix':<{width}}  {'shape':>12}  {'sparsity':>8}")
        rows = list(self.matrices.items())
        shown = rows if max_rows is None or len(rows) <= max_rows else rows[:max_rows]
        for name, m in shown:
            shape = "x".join(str(s) for s in m.shape)
            lines.append(f"{name:<{width}}  {shape:>12}  {m.sparsity:>8.4f}")
        if len(shown) < len(rows):
            lines.append(f"... {len(rows) - len(shown)} more matrices")
        lines.append(f"{'all target matrices':<{width}}  {self.target_numel:>12,}  {self.sparsity:>8.4f}")
        lines.append(f"{'all parameters':<{width}}  {self.total_parameters:>12,}  {self.model_sparsity:>8.4f}")
        lines += ["", f"{'stage':<24}  {'seconds':>9}  {'peak RSS MiB':>12}  {'peak CUDA MiB':>13}"]
        for stage, seconds in self.stage_seconds.items():
            rss = self.peak_rss_bytes.get(stage, 0) / 2**20
            cuda = self.peak_cuda_bytes.get(stage)
            cuda_text = f"{cuda / 2**20:>13.1f}" if cuda is not None else f"{'-':>13}"
            lines.append(f"{stage:<24}  {seconds:>9.2f}  {rss:>12.1f}  {cuda_text}")
        if self.breakdown:
            lines += ["", f"{'step':<24}  {'seconds':>9}  {'share':>6}"]
            total = sum(self.stage_seconds.values()) or 1.0
            for step, seconds in self.breakdown.items():
                lines.append(f"{step:<24}  {seconds:>9.2f}  {seconds / total:>6.1%}")
        for key, value in self.extra.items():
            if isinstance(value, (int, float, str)):
                lines.append(f"{key}: {value}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table(max_rows=40)


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

    def save_importance(self, path: str | os.PathLike) -> str:
        """Save D-Pruner's G and I so that other sparsities or patterns need no new pass over data."""
        from .checkpoint.importance import save_importance

        if self.importance is None:
            raise ValueError(f"method={self.report.method!r} computes no importance scores to save; use method='dpruner'.")
        with _main_process_writes() as is_main:
            if is_main:
                fingerprint = (self.report.extra.get("model_fingerprint") or {}).get("sha256")  # checked on reuse
                metadata = {"config": self.config.to_dict(), "model_fingerprint": fingerprint}
                return save_importance(path, self.importance, metadata)
        return os.fspath(path)
