"""`RecoveryConfig`: the recipe of a recovery run (mask-preserving fine-tuning after pruning), validated and saved.

Like `DPrunerConfig`, this module imports only the standard library, so that the CLI can build its flags without
torch. Where and how a run executes (device, gradient checkpointing, output folder for training checkpoints,
resuming) is not part of the recipe: those are arguments of `recover()`, never saved.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError

__all__ = ["RecoveryConfig", "RECOVERY_MODES", "SCHEDULERS", "DEFAULT_MAX_STEPS", "DEFAULT_LEARNING_RATES"]

RECOVERY_MODES = ("full", "lora")
#: learning-rate schedules of `transformers.SchedulerType` that need no extra arguments
SCHEDULERS = ("linear", "cosine", "cosine_with_restarts", "polynomial", "constant", "constant_with_warmup", "inverse_sqrt")
#: budget when neither `max_steps` nor `max_tokens` is given: 192 one-window steps, ~7 minutes of masked LoRA for
#: SmolLM2 on 2 CPU cores (chosen on validation text: benchmarks/results/tune_recovery_{medical,legal}.md)
DEFAULT_MAX_STEPS = 192
#: peak learning rate per mode when `learning_rate` is not given (chosen on validation text:
#: benchmarks/results/tune_recovery_medical.md, tune_recovery_legal.md)
DEFAULT_LEARNING_RATES = {"full": 1e-4, "lora": 1e-3}


@dataclass
class RecoveryConfig:
    """Recipe of a recovery run: fine-tune a pruned model on general + domain text while every pruned weight stays zero.

    The defaults were chosen on medical and legal validation text after the default D-Pruner at 50% on SmolLM2
    (`benchmarks/tune_recovery.py`): a masked LoRA adapter (r 16, lr 1e-3) closed more of the general-perplexity gap
    than masked full fine-tuning at its best learning rate, in less time; 192 steps closed more of both gaps than 96
    and train for ~7 minutes on 2 CPU cores; distillation from the dense model changed nothing measurable, so it is
    off.

    Args:
        mode (`str`, *optional*, defaults to `"lora"`):
            `"full"`: masked full-parameter fine-tuning (pruned weights' gradients, optimizer state and values stay
            zero); `"lora"`: a peft LoRA adapter whose update is masked (delta W * M) in training and at the merge.
        train_params (`str`, *optional*, defaults to `"all"`):
            Full mode only: `"targets"` trains only the pruned linears' weights, `"all"` every parameter (embeddings,
            norms, head too; the pruned entries stay masked).
        max_steps (`int`, *optional*):
            Optimizer steps. Give this or `max_tokens`; with neither, 192 (`DEFAULT_MAX_STEPS`).
        max_tokens (`int`, *optional*):
            Training tokens; the steps are `ceil(max_tokens / (batch_size * seq_len))`.
        learning_rate (`float`, *optional*):
            Peak learning rate of AdamW (finite, > 0); by default 1e-3 for `"lora"`, 1e-4 for `"full"`
            (`DEFAULT_LEARNING_RATES`).
        lr_scheduler_type (`str`, *optional*, defaults to `"cosine"`):
            Schedule after the warm-up: one of `SCHEDULERS`.
        warmup_steps (`int`, *optional*, defaults to 8):
            Linear warm-up steps.
        weight_decay (`float`, *optional*, defaults to 0.0):
            Decoupled weight decay of AdamW (a zero weight stays zero under it).
        max_grad_norm (`float`, *optional*, defaults to 1.0):
            Gradient-norm clipping (0 disables it).
        batch_size (`int`, *optional*, defaults to 1):
            Sequences per optimizer step, over all processes and accumulation steps together (so that the recipe is
            the same on one process or several).
        gradient_accumulation_steps (`int`, *optional*, defaults to 1):
            Forward/backward passes per optimizer step; `batch_size` must be a multiple of it (and of the number of
            processes times it).
        seq_len (`int`, *optional*, defaults to 256):
            Tokens per training window.
        domain_share (`float`, *optional*, defaults to 0.75):
            Share of domain windows in the training stream, in [0, 1] (0: general only, 1: domain only); the
            windows are interleaved so that every prefix of the stream holds that share, rounded.
        general_num_samples (`int`, *optional*):
            Distinct general windows to cut; default: as many as the budget uses (each seen once). Fewer are cycled.
        domain_num_samples (`int`, *optional*):
            Distinct domain windows to cut; default: as many as the budget uses.
        text_column (`str`, *optional*, defaults to `"text"`):
            Column holding the text in the datasets.
        add_bos (`str` or `bool`, *optional*, defaults to `"auto"`):
            Start every window with the tokenizer's BOS: `"auto"` (when the tokenizer adds one), `True`, `False`.
        distill_weight (`float`, *optional*, defaults to 0.0):
            Weight w of the distillation term in `(1 - w) * CE + w * T^2 * KL(teacher || student)` on the logits,
            in [0, 1]; 0 turns distillation off (no teacher is loaded).
        distill_temperature (`float`, *optional*, defaults to 1.0):
            Temperature T of both softmaxes in the distillation term.
        lora_r (`int`, *optional*, defaults to 16):
            LoRA rank.
        lora_alpha (`float`, *optional*, defaults to 32):
            LoRA scaling numerator (the update is scaled by alpha / r).
        lora_dropout (`float`, *optional*, defaults to 0.0):
            Dropout on the adapter's input, in [0, 1).
        lora_targets (`list[str]`, *optional*):
            fnmatch patterns among the pruned target linears that get an adapter; default: all of them.
        seed (`int`, *optional*, defaults to 0):
            Seed of the windows' order, the adapter's initialisation and the Trainer.
        logging_steps (`int`, *optional*, defaults to 8):
            Log the loss every this many steps (the loss curve of the report).
        eval_steps (`int`, *optional*, defaults to 0):
            Evaluate on `eval_ds` before the first step and every this many steps; 0: no evaluation during training.
        save_steps (`int`, *optional*, defaults to 0):
            Write a Trainer checkpoint (resumable) into `output_dir` every this many steps; 0: none.
    """

    mode: str = field(default="lora", metadata={"help": "'lora' (masked LoRA, merged) or 'full' (masked full fine-tuning)."})
    train_params: str = field(
        default="all", metadata={"help": "Full mode: 'targets' (pruned linears only) or 'all' parameters train."}
    )
    max_steps: int | None = field(default=None, metadata={"help": "Optimizer steps (or max_tokens); default 192."})
    max_tokens: int | None = field(default=None, metadata={"help": "Training tokens (instead of max_steps)."})
    learning_rate: float | None = field(
        default=None, metadata={"help": "Peak AdamW learning rate (> 0); default 1e-3 for lora, 1e-4 for full."}
    )
    lr_scheduler_type: str = field(default="cosine", metadata={"help": "Schedule: " + ", ".join(SCHEDULERS) + "."})
    warmup_steps: int = field(default=8, metadata={"help": "Linear warm-up steps."})
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW decoupled weight decay."})
    max_grad_norm: float = field(default=1.0, metadata={"help": "Gradient-norm clipping (0: off)."})
    batch_size: int = field(default=1, metadata={"help": "Sequences per optimizer step (all processes together)."})
    gradient_accumulation_steps: int = field(default=1, metadata={"help": "Forward/backward passes per optimizer step."})
    seq_len: int = field(default=256, metadata={"help": "Tokens per training window."})
    domain_share: float = field(default=0.75, metadata={"help": "Share of domain windows in the stream, in [0, 1]."})
    general_num_samples: int | None = field(
        default=None, metadata={"help": "Distinct general windows; default: as many as the budget uses."}
    )
    domain_num_samples: int | None = field(
        default=None, metadata={"help": "Distinct domain windows; default: as many as the budget uses."}
    )
    text_column: str = field(default="text", metadata={"help": "Column holding the text in the datasets."})
    add_bos: str | bool = field(
        default="auto", metadata={"help": "Start each window with the tokenizer's BOS: 'auto', true or false."}
    )
    distill_weight: float = field(
        default=0.0, metadata={"help": "Weight of KL to the dense teacher's logits, in [0, 1]; 0: off."}
    )
    distill_temperature: float = field(default=1.0, metadata={"help": "Softmax temperature of the distillation term."})
    lora_r: int = field(default=16, metadata={"help": "LoRA rank."})
    lora_alpha: float = field(default=32.0, metadata={"help": "LoRA alpha (update scaled by alpha / r)."})
    lora_dropout: float = field(default=0.0, metadata={"help": "Dropout on the LoRA input, in [0, 1)."})
    lora_targets: list[str] | None = field(
        default=None, metadata={"help": "fnmatch patterns of pruned linears given an adapter; default: all."}
    )
    seed: int = field(default=0, metadata={"help": "Seed of the windows' order, the adapter and the Trainer."})
    logging_steps: int = field(default=8, metadata={"help": "Log the loss every N steps."})
    eval_steps: int = field(default=0, metadata={"help": "Evaluate on eval_ds every N steps (0: never)."})
    save_steps: int = field(default=0, metadata={"help": "Write a resumable Trainer checkpoint every N steps (0: never)."})

    def __post_init__(self) -> None:
        if self.learning_rate is None and self.mode in DEFAULT_LEARNING_RATES:
            self.learning_rate = DEFAULT_LEARNING_RATES[self.mode]
        self._validate()

    def _validate(self) -> None:
        if self.mode not in RECOVERY_MODES:
            raise ConfigError(f"mode={self.mode!r} is unknown; choose one of {', '.join(map(repr, RECOVERY_MODES))}.")
        if self.train_params not in ("targets", "all"):
            raise ConfigError(f"train_params={self.train_params!r} must be 'targets' or 'all'.")
        if self.max_steps is not None and self.max_tokens is not None:
            raise ConfigError(f"max_steps={self.max_steps} and max_tokens={self.max_tokens} both set the budget; give one.")
        for name in ("max_steps", "max_tokens", "general_num_samples", "domain_num_samples"):
            value = getattr(self, name)
            if value is not None and (not _is_int(value) or value < 1):
                raise ConfigError(f"{name}={value!r} must be a positive integer (or None).")
        for name in ("batch_size", "gradient_accumulation_steps", "seq_len", "lora_r"):
            value = getattr(self, name)
            if not _is_int(value) or value < 1:
                raise ConfigError(f"{name}={value!r} must be a positive integer.")
        if self.seq_len < 2:
            raise ConfigError(f"seq_len={self.seq_len} must be at least 2 (a token and the next one to predict).")
        for name in ("warmup_steps", "logging_steps", "eval_steps", "save_steps", "seed"):
            value = getattr(self, name)
            if not _is_int(value) or value < 0:
                raise ConfigError(f"{name}={value!r} must be a non-negative integer.")
        if not _is_number(self.learning_rate) or not math.isfinite(self.learning_rate) or self.learning_rate <= 0:
            raise ConfigError(f"learning_rate={self.learning_rate!r} must be a finite number > 0, e.g. 1e-4.")
        for name in ("weight_decay", "max_grad_norm", "lora_alpha"):
            value = getattr(self, name)
            if not _is_number(value) or not math.isfinite(value) or value < 0:
                raise ConfigError(f"{name}={value!r} must be a finite non-negative number, e.g. {_DEFAULTS.get(name, 0.0)}.")
        for name in ("domain_share", "distill_weight"):
            value = getattr(self, name)
            if not _is_number(value) or not 0.0 <= value <= 1.0:
                raise ConfigError(f"{name}={value!r} must be a number in [0, 1], e.g. {_DEFAULTS.get(name, 0.5)}.")
        if not _is_number(self.lora_dropout) or not 0.0 <= self.lora_dropout < 1.0:
            raise ConfigError(f"lora_dropout={self.lora_dropout!r} must be a number in [0, 1), e.g. 0.05.")
        if not _is_number(self.distill_temperature) or not math.isfinite(self.distill_temperature) or self.distill_temperature <= 0:
            raise ConfigError(f"distill_temperature={self.distill_temperature!r} must be a finite number > 0, e.g. 1.0.")
        if self.lr_scheduler_type not in SCHEDULERS:
            raise ConfigError(f"lr_scheduler_type={self.lr_scheduler_type!r} is unknown; choose one of {', '.join(SCHEDULERS)}.")
        if self.batch_size % self.gradient_accumulation_steps:
            raise ConfigError(
                f"batch_size={self.batch_size} is not a multiple of gradient_accumulation_steps="
                f"{self.gradient_accumulation_steps}; make it one (e.g. batch_size={self.gradient_accumulation_steps})."
            )
        if not (isinstance(self.add_bos, bool) or self.add_bos == "auto"):
            raise ConfigError(f"add_bos={self.add_bos!r} must be 'auto', True or False.")
        if self.lora_targets is not None and (isinstance(self.lora_targets, str) or not all(isinstance(t, str) for t in self.lora_targets)):
            raise ConfigError(f"lora_targets={self.lora_targets!r} must be a list of module-name patterns, e.g. ['*.mlp.*'].")
        if not isinstance(self.text_column, str) or not self.text_column:
            raise ConfigError(f"text_column={self.text_column!r} must be a column name, e.g. 'text'.")

    # ------------------------------------------------------------------ derived values
    @property
    def steps(self) -> int:
        """Optimizer steps of the run: `max_steps`, or the steps `max_tokens` takes, or the default 192."""
        if self.max_steps is not None:
            return self.max_steps
        if self.max_tokens is not None:
            return math.ceil(self.max_tokens / (self.batch_size * self.seq_len))
        return DEFAULT_MAX_STEPS

    @property
    def tokens(self) -> int:
        """Training tokens of the run (every window is full)."""
        return self.steps * self.batch_size * self.seq_len

    def per_device_batch_size(self, num_processes: int = 1) -> int:
        """Sequences per forward pass on each process; `ConfigError` when the batch does not split evenly."""
        share, rest = divmod(self.batch_size, self.gradient_accumulation_steps * num_processes)
        if rest or share == 0:
            raise ConfigError(
                f"batch_size={self.batch_size} cannot be split over {num_processes} process(es) x "
                f"gradient_accumulation_steps={self.gradient_accumulation_steps}; make it a multiple of "
                f"{num_processes * self.gradient_accumulation_steps}."
            )
        return share

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json_string(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RecoveryConfig":
        """Build a config from a dict; an unknown key raises `ConfigError` (with the closest field's name)."""
        if not isinstance(data, dict):
            raise ConfigError(f"a RecoveryConfig must be built from a dict of options, not a {type(data).__name__}.")
        known = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(data) - set(known))
        if unknown:
            hints = [f"{k!r} (did you mean {close[0]!r}?)" if (close := difflib.get_close_matches(k, known, 1)) else repr(k)
                     for k in unknown]
            raise ConfigError(f"unknown RecoveryConfig key {', '.join(hints)}; fix or drop it.")
        return cls(**data)

    @classmethod
    def field_help(cls) -> dict[str, str]:
        return {f.name: f.metadata.get("help", "") for f in dataclasses.fields(cls)}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


_DEFAULTS = {f.name: f.default for f in dataclasses.fields(RecoveryConfig)}
