"""What an estimate holds: per stage, the expected peak memory split into named parts and the seconds; printed as a
table, or as a dict for JSON."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..tables import format_table

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
        rows = [
            (s.stage, f"{s.peak_bytes / MIB:.0f}", f"{s.seconds:.0f}",
             ", ".join(f"{k} {v / MIB:.0f}" for k, v in sorted(s.parts.items(), key=lambda kv: -kv[1])[:3]))
            for s in self.stages
        ]
        rows.append(("run", f"{self.peak_bytes / MIB:.0f}", f"{self.seconds:.0f}", "(peak of the stages; total time)"))
        return format_table(rows, ("stage", "peak MiB", "seconds", "largest parts"), align="lrrl", rule=False)
