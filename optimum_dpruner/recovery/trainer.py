"""The `transformers.Trainer` of a recovery run: training arguments from a `RecoveryConfig`, the loss (with optional
distillation), and the callbacks that keep the mask and stop on a non-finite step.

Everything a Trainer brings stays the Trainer's: the AdamW optimizer and schedule, gradient accumulation and
clipping, logging and progress bars, evaluation during training, checkpoints (`save_steps`) and resuming from them,
and DDP when launched with `accelerate launch` or `torchrun`.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from transformers import Trainer, TrainerCallback, TrainingArguments

from .config import RecoveryConfig
from .distillation import token_losses

__all__ = ["RecoveryTrainer", "training_arguments", "LossCurve", "resume_point"]

logger = logging.getLogger(__name__)


def resume_point(resume_from_checkpoint: str | bool | None, folder: str) -> str | None:
    """The checkpoint to resume from: a path as given, or for `True` the latest *complete* `checkpoint-N` in `folder`.

    The Trainer writes a checkpoint file by file and `trainer_state.json` last, so a run stopped mid-save (Ctrl-C, a
    lost machine) leaves a newest folder without it; resuming from that one would fail or load half a state.
    """
    import os

    from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

    from ..errors import ConfigError

    if resume_from_checkpoint is not True:
        return resume_from_checkpoint or None
    steps = sorted((int(name.rsplit("-", 1)[1]), name) for name in (os.listdir(folder) if os.path.isdir(folder) else [])
                   if name.startswith(PREFIX_CHECKPOINT_DIR + "-") and name.rsplit("-", 1)[1].isdigit())
    complete = [name for _, name in steps if os.path.isfile(os.path.join(folder, name, "trainer_state.json"))]
    if not complete:
        raise ConfigError(f"no complete Trainer checkpoint in {folder}; run without resuming (or pass a checkpoint-N "
                          "folder).")
    skipped = [name for _, name in steps if name not in complete and int(name.rsplit("-", 1)[1]) >
               int(complete[-1].rsplit("-", 1)[1])]
    if skipped:
        logger.warning("skipping %s in %s: written only in part (no trainer_state.json)", ", ".join(skipped), folder)
    return os.path.join(folder, complete[-1])


def training_arguments(config: RecoveryConfig, output_dir: str, *, num_processes: int = 1, device: str | None = None,
                       progress: bool = True, has_eval: bool = False, gradient_checkpointing: bool = False
                       ) -> TrainingArguments:
    """The `TrainingArguments` of a run: the recipe from `config`, where it runs from the other arguments."""
    save = config.save_steps > 0
    evaluate = has_eval and config.eval_steps > 0
    checkpointing = "activation_checkpointing" if "activation_checkpointing" in TrainingArguments.__dataclass_fields__ \
        else "gradient_checkpointing"  # the new name from transformers 5.24
    return TrainingArguments(
        output_dir=output_dir,
        max_steps=config.steps,
        per_device_train_batch_size=config.per_device_batch_size(num_processes),
        per_device_eval_batch_size=1,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        learning_rate=config.learning_rate,
        lr_scheduler_type=config.lr_scheduler_type,
        warmup_steps=config.warmup_steps,
        weight_decay=config.weight_decay,
        max_grad_norm=config.max_grad_norm,
        optim="adamw_torch",
        seed=config.seed,
        data_seed=config.seed,
        train_sampling_strategy="sequential",
        logging_strategy="steps",
        logging_steps=max(1, config.logging_steps or config.steps),
        logging_first_step=True,
        eval_strategy="steps" if evaluate else "no",
        eval_steps=config.eval_steps if evaluate else None,
        eval_on_start=evaluate,  # the curve's first point is the pruned model itself
        save_strategy="steps" if save else "no",
        save_steps=config.save_steps if save else None,
        save_only_model=False,
        **{checkpointing: gradient_checkpointing,
           f"{checkpointing}_kwargs": {"use_reentrant": False} if gradient_checkpointing else None},
        report_to="none",
        disable_tqdm=not progress,
        dataloader_num_workers=0,
        remove_unused_columns=False,
        use_cpu=device is not None and torch.device(device).type == "cpu",
        ddp_find_unused_parameters=False,
    )


class LossCurve(TrainerCallback):
    """Records what the Trainer logs: `(step, loss)` of training and `(step, {metric: value})` of evaluation."""

    def __init__(self) -> None:
        self.train: list[tuple[int, float]] = []
        self.eval: list[tuple[int, dict[str, float]]] = []

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = logs or {}
        if "loss" in logs:
            self.train.append((state.global_step, float(logs["loss"])))
        metrics = {k: float(v) for k, v in logs.items() if k.startswith("eval_") and isinstance(v, (int, float))}
        if metrics:
            self.eval.append((state.global_step, metrics))


class RecoveryTrainer(Trainer):
    """A `Trainer` whose loss is the recovery loss (`distillation.token_losses`), normalised by the tokens of the
    whole optimizer step on this process, so that DDP's gradient mean gives the single-process gradient.

    Args:
        teacher (`nn.Module`, *optional*): the frozen dense model for distillation (on the student's device).
        recovery_config (`RecoveryConfig`): the recipe (distillation weight and temperature).
        All other arguments are `Trainer`'s.
    """

    loss_is_scaled_for_ga = True  # compute_loss divides by the tokens of all accumulated micro-batches

    def __init__(self, *args: Any, teacher=None, recovery_config: RecoveryConfig, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.teacher = teacher
        self.recovery_config = recovery_config

    def compute_loss(self, model, inputs, return_outputs: bool = False, num_items_in_batch=None):
        cfg = self.recovery_config
        input_ids = inputs["input_ids"]
        outputs = model(input_ids=input_ids, use_cache=False)
        teacher_logits = None
        if self.teacher is not None and cfg.distill_weight > 0:
            with torch.no_grad():
                teacher_logits = self.teacher(input_ids=input_ids, use_cache=False).logits
        total, _, tokens = token_losses(outputs.logits, input_ids, teacher_logits, cfg.distill_weight,
                                        cfg.distill_temperature)
        if model.training:
            loss = total / (tokens * self.current_gradient_accumulation_steps)
        else:
            loss = total / tokens
        return (loss, outputs) if return_outputs else loss

    def _get_train_sampler(self, train_dataset=None):
        return torch.utils.data.SequentialSampler(train_dataset if train_dataset is not None else self.train_dataset)
