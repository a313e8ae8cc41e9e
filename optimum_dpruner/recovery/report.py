"""`RecoveryReport`: what a recovery run did and cost, and whether every pruned weight is still zero."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["RecoveryReport"]


@dataclass
class RecoveryReport:
    """What a recovery run did and cost.

    Args:
        mode (`str`): `"full"` or `"lora"`.
        steps (`int`): optimizer steps taken.
        tokens (`int`): training tokens seen (all processes together).
        num_processes (`int`): processes the run was launched on.
        losses (`list[tuple[int, float]]`): the logged training loss, `(step, loss)` (cross-entropy, or the mixed
            loss with distillation).
        evaluations (`list[tuple[int, dict[str, float]]]`): the metrics of each evaluation during training.
        sparsity_before (`float`): fraction of pruned target weights when training started.
        sparsity_after (`float`): the same fraction after training (and after the merge in LoRA mode).
        unmasked_after (`int`): pruned positions holding a non-zero weight after the run (always 0).
        verified (`bool`, *optional*): `verify_sparsity` of the result against its metadata (`None`: no metadata).
        data (`dict`): fingerprints of the windows of each side (source, windows, tokens used, sha256).
        stage_seconds, peak_rss_bytes, peak_cuda_bytes (`dict`): wall time and peak memory of the `"recovery"` stage.
        stopped (`str`, *optional*): why the run stopped early (a non-finite step), else `None`.
    """

    mode: str
    steps: int = 0
    tokens: int = 0
    num_processes: int = 1
    losses: list[tuple[int, float]] = field(default_factory=list)
    evaluations: list[tuple[int, dict[str, float]]] = field(default_factory=list)
    sparsity_before: float = 0.0
    sparsity_after: float = 0.0
    unmasked_after: int = 0
    verified: bool | None = None
    data: dict[str, Any] = field(default_factory=dict)
    stage_seconds: dict[str, float] = field(default_factory=dict)
    peak_rss_bytes: dict[str, int] = field(default_factory=dict)
    peak_cuda_bytes: dict[str, int] = field(default_factory=dict)
    stopped: str | None = None

    @property
    def seconds(self) -> float:
        return self.stage_seconds.get("recovery", 0.0)

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds else 0.0

    @property
    def peak_memory_bytes(self) -> int:
        """Peak CUDA memory when the run used CUDA, else the peak resident memory of the process."""
        return max(self.peak_cuda_bytes.values(), default=0) or max(self.peak_rss_bytes.values(), default=0)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.update(seconds=round(self.seconds, 3), tokens_per_second=round(self.tokens_per_second, 1))
        return out

    def __str__(self) -> str:
        first = f"{self.losses[0][1]:.4f}" if self.losses else "-"
        last = f"{self.losses[-1][1]:.4f}" if self.losses else "-"
        lines = [
            f"recovery ({self.mode}): {self.steps} steps, {self.tokens:,} tokens in {self.seconds:.1f}s "
            f"({self.tokens_per_second:.0f} tokens/s, {self.num_processes} process(es))",
            f"loss: {first} -> {last} over {len(self.losses)} logged steps",
            f"sparsity of the targets: {self.sparsity_before:.4f} before, {self.sparsity_after:.4f} after; "
            f"pruned weights made non-zero: {self.unmasked_after}; verify_sparsity: "
            + {True: "ok", False: "FAILED", None: "no metadata"}[self.verified],
            f"peak memory: {self.peak_memory_bytes / 2**20:.0f} MiB",
        ]
        if self.stopped:
            lines.append(f"stopped: {self.stopped}")
        return "\n".join(lines)
