"""`PruneReport`: what a pruning run achieved (zeros per matrix and in the whole model) and what each stage cost."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch import nn

from ..runtime.offload import parameter_value
from ..tables import format_table

__all__ = ["PruneReport", "MatrixSparsity", "measure_sparsity"]


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
        breakdown (`dict[str, float]`): wall time of the steps inside the stages (`runtime.timers.StageTimer`):
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
        """The report as plain-text tables (per matrix, then per stage, then the steps inside the stages)."""
        rows = list(self.matrices.items())
        shown = rows if max_rows is None or len(rows) <= max_rows else rows[:max_rows]
        matrices = [(name, "x".join(str(s) for s in m.shape), f"{m.sparsity:.4f}") for name, m in shown]
        if len(shown) < len(rows):
            matrices.append((f"... {len(rows) - len(shown)} more matrices",))
        matrices += [
            ("all target matrices", f"{self.target_numel:,}", f"{self.sparsity:.4f}"),
            ("all parameters", f"{self.total_parameters:,}", f"{self.model_sparsity:.4f}"),
        ]
        stages = [
            (stage, f"{seconds:.2f}", f"{self.peak_rss_bytes.get(stage, 0) / 2**20:.1f}",
             f"{cuda / 2**20:.1f}" if (cuda := self.peak_cuda_bytes.get(stage)) is not None else "-")
            for stage, seconds in self.stage_seconds.items()
        ]
        lines = [
            f"method={self.method} pattern={self.pattern} target sparsity={self.target_sparsity:.4f}",
            "",
            format_table(matrices, ("matrix", "shape", "sparsity"), rule=False),
            "",
            format_table(stages, ("stage", "seconds", "peak RSS MiB", "peak CUDA MiB"), rule=False),
        ]
        if self.breakdown:
            total = sum(self.stage_seconds.values()) or 1.0
            steps = [(step, f"{seconds:.2f}", f"{seconds / total:.1%}") for step, seconds in self.breakdown.items()]
            lines += ["", format_table(steps, ("step", "seconds", "share"), rule=False)]
        lines += [f"{key}: {value}" for key, value in self.extra.items() if isinstance(value, (int, float, str))]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table(max_rows=40)
