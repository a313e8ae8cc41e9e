"""What an estimate holds: per stage, the expected peak memory split into named parts and the seconds; printed as a
table, or as a dict for JSON."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["StageEstimate", "RunEstimate", "MIB"]

MIB = 2**20


@dataclass
class StageEstimate:
    """One stage: expected peak memory (bytes, split into named parts) and seconds."""

    stage: str
    parts: dict[str, int]
    seconds: float

    @property
    def peak_bytes(self) -> int:
        return sum(self.parts.values())


@dataclass
class RunEstimate:
    """The estimate of a run: one `StageEstimate` per stage, in order, and what it assumed."""

    stages: list[StageEstimate]
    assumptions: dict[str, object] = field(default_factory=dict)

    @property
    def peak_bytes(self) -> int:
        return max(s.peak_bytes for s in self.stages)

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.stages)

    def to_dict(self) -> dict:
        return {
            "peak_mib": round(self.peak_bytes / MIB, 1),
            "seconds": round(self.seconds, 1),
            "stages": {
                s.stage: {
                    "peak_mib": round(s.peak_bytes / MIB, 1),
                    "seconds": round(s.seconds, 1),
                    "parts_mib": {k: round(v / MIB, 1) for k, v in s.parts.items()},
                }
                for s in self.stages
            },
            "assumptions": self.assumptions,
        }

    def __str__(self) -> str:
        lines = [f"{'stage':<20} {'peak MiB':>10} {'seconds':>9}  largest parts"]
        for s in self.stages:
            top = sorted(s.parts.items(), key=lambda kv: -kv[1])[:3]
            parts = ", ".join(f"{k} {v / MIB:.0f}" for k, v in top)
            lines.append(f"{s.stage:<20} {s.peak_bytes / MIB:>10.0f} {s.seconds:>9.0f}  {parts}")
        lines.append(f"{'run':<20} {self.peak_bytes / MIB:>10.0f} {self.seconds:>9.0f}  (peak of the stages; total time)")
        return "\n".join(lines)
