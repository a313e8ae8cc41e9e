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

Importing this package imports only the config (the CLI reads its fields without torch); the public entry points
are `optimum_dpruner.recover`, `RecoveryConfig`, `RecoveryResult` and `RecoveryReport`, and the masked-LoRA pieces
are `recovery.lora.MaskedLoraLinear` and `recovery.lora.merge_masked_lora`.
"""

from .config import RecoveryConfig

__all__ = ["RecoveryConfig"]
