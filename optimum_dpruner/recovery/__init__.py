"""Recovery after pruning: mask-preserving fine-tuning (full or LoRA) on general + domain text, on transformers'
Trainer, with optional distillation from the dense model.

- `config`: `RecoveryConfig`, the recipe (standard library only);
- `stream`: the interleaved general / domain training windows;
- `masking`: the pruned positions, the checks before training, `MaskKeeper` (full mode) and the non-finite guard;
- `lora`: `MaskedLoraLinear` (peft) and the mask-preserving merge;
- `distillation`: the loss (cross-entropy, KL to the teacher's logits);
- `trainer`: `RecoveryTrainer` and its `TrainingArguments`;
- `report`, `result`: `RecoveryReport`, `RecoveryResult` (saved like a pruned model);
- `run`: `recover`.

Importing this package imports only the config; the rest is loaded on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from .config import RecoveryConfig

__all__ = ["RecoveryConfig", "RecoveryReport", "RecoveryResult", "recover", "merge_masked_lora", "MaskedLoraLinear"]

_LAZY = {"recover": "run", "RecoveryReport": "report", "RecoveryResult": "result", "merge_masked_lora": "lora",
         "MaskedLoraLinear": "lora"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
