"""`recover`: fine-tune a pruned model on general + domain text, keeping every pruned weight at zero."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from typing import Any

import torch

from ..checkpoint.metadata import SPARSITY_KEY
from ..checkpoint.verification import verify_sparsity
from ..configuration import CONFIG_NAME, DPrunerConfig
from ..data.calibration import calibration_samples
from ..errors import ConfigError, DataError, NumericalError
from ..runtime.distributed import current_process_group
from ..runtime.memory import StageMonitor
from .config import RecoveryConfig
from .masking import FiniteGradients, MaskKeeper, capture_masks, check_masks, count_unmasked, select, target_names
from .report import RecoveryReport
from .result import RecoveryResult
from .stream import WindowStream, build_stream

__all__ = ["recover", "DEFAULT_GENERAL_DATASET"]

logger = logging.getLogger(__name__)

DEFAULT_GENERAL_DATASET = "builtin:general"


def _side_car(path: str) -> dict[str, Any]:
    file = os.path.join(path, CONFIG_NAME)
    if not os.path.isfile(file):
        return {}
    with open(file, encoding="utf-8") as f:
        data = json.load(f)
    return data if isinstance(data, dict) else {}


def _load(model_or_path, tokenizer, dtype, device, load_kwargs: dict):
    """The model, its tokenizer and what its checkpoint says of the pruning run (`dpruner_config.json`)."""
    from ..models.loading import load_model, load_tokenizer

    if isinstance(model_or_path, (str, os.PathLike)):
        path = os.fspath(model_or_path)
        side_car = _side_car(path) if os.path.isdir(path) else {}
        if os.path.isdir(path) and side_car:
            from ..checkpoint.serialization import load_pretrained

            model = load_pretrained(path, dtype=dtype, device=device)
        else:
            model = load_model(path, dtype=dtype, device=device, **load_kwargs)
        hub = {k: v for k, v in load_kwargs.items() if k in ("revision", "cache_dir", "trust_remote_code")}
        return model, load_tokenizer(path, tokenizer, **hub), side_car
    model = load_model(model_or_path, dtype=dtype, device=device)
    return model, load_tokenizer(model, tokenizer), {}


def _prune_config(model, side_car: dict[str, Any], prune_config: DPrunerConfig | None, sparsity: float) -> DPrunerConfig:
    """The pruning run's recipe: given, from the checkpoint, from the sparsity metadata, or inferred."""
    if prune_config is not None:
        return prune_config
    if isinstance(side_car.get("config"), dict):
        with contextlib.suppress(ConfigError):
            return DPrunerConfig.from_dict(side_car["config"], strict=False)
    metadata = getattr(model.config, SPARSITY_KEY, None)
    if isinstance(metadata, dict) and metadata.get("method"):
        with contextlib.suppress(ConfigError, TypeError):
            return DPrunerConfig(method=metadata["method"], pattern=metadata.get("pattern", "unstructured"),
                                 sparsity=metadata.get("target_sparsity"), granularity=metadata.get("granularity"),
                                 block_size=metadata.get("block_size") or 128)
    # zeros of unknown origin (or none, with allow_dense): record what is there, per matrix at the loosest level
    return DPrunerConfig(method="magnitude", sparsity=min(max(0.0, int(sparsity * 1e4) / 1e4), 0.9999))


def _teacher(teacher, base_model: str | None, dtype, load_kwargs: dict):
    from ..models.loading import load_model

    if teacher is None:
        if not base_model:
            raise ConfigError("distill_weight > 0 needs the dense model as teacher; pass teacher= (a model, folder or Hub "
                              "id), or set distill_weight=0.")
        teacher = base_model
    shared = {k: v for k, v in load_kwargs.items() if k != "revision"}  # the revision names the pruned model's
    model = load_model(teacher, dtype=dtype, **shared) if isinstance(teacher, (str, os.PathLike)) else teacher
    model.eval().requires_grad_(False)
    return model


def _eval_windows(eval_ds, tokenizer, config: RecoveryConfig, model_config, windows: int):
    if eval_ds is None:
        return None
    sets = eval_ds if isinstance(eval_ds, dict) else {"eval": eval_ds}
    out = {}
    for name, source in sets.items():
        samples = calibration_samples(source, tokenizer, windows, config.seq_len, config.seed + 1000, config.text_column,
                                      model_config, config.add_bos)
        out[name] = WindowStream(samples, [], [False] * len(samples))
    return out


def _trainable(model, config: RecoveryConfig, targets: list[str]) -> list[torch.nn.Parameter]:
    if config.train_params == "all":
        model.requires_grad_(True)
    else:
        model.requires_grad_(False)
        for name in targets:
            model.get_submodule(name).weight.requires_grad_(True)
    return [p for p in model.parameters() if p.requires_grad]


def recover(
    model_or_path: Any,
    general_ds: Any = None,
    domain_ds: Any = None,
    config: RecoveryConfig | dict | None = None,
    *,
    tokenizer=None,
    teacher=None,
    eval_ds: Any = None,
    output_dir: str | os.PathLike | None = None,
    resume_from_checkpoint: str | bool | None = None,
    allow_dense: bool = False,
    dtype: str | torch.dtype | None = None,
    device: str | None = None,
    progress: bool = True,
    eval_windows: int = 8,
    gradient_checkpointing: bool = False,
    prune_config: DPrunerConfig | None = None,
    calibration: dict[str, Any] | None = None,
    base_model: str | None = None,
    callbacks: list | None = None,
    **load_kwargs,
) -> RecoveryResult:
    """Fine-tune a pruned model on a mix of general and domain windows while every pruned weight stays exactly zero.

    Full mode trains the model's parameters with the pruned entries masked (gradients, AdamW state and values);
    LoRA mode trains a peft adapter whose update is masked, then merges it (the merged model has the same zeros).
    Training runs on `transformers.Trainer`: launched with `accelerate launch` / `torchrun`, it runs DDP.

    Args:
        model_or_path (`PreTrainedModel` or `str`): the pruned model, or the folder (or Hub id) it was saved to.
        general_ds, domain_ds: the general and the domain text (a dataset, a list of strings, `"builtin:<name>"`, a
            file or a Hub id); `general_ds` defaults to `"builtin:general"` when the stream needs general windows.
        config (`RecoveryConfig` or `dict`, *optional*): the recipe; defaults to `RecoveryConfig()`.
        tokenizer (*optional*): defaults to the model's.
        teacher (*optional*): the dense model (model, folder or Hub id) for distillation; defaults to the base model
            recorded in the checkpoint. Only used when `config.distill_weight > 0`.
        eval_ds (*optional*): a dataset, or `{name: dataset}`, evaluated every `config.eval_steps` steps
            (`eval_windows` windows each; `eval_<name>_loss` in `report.evaluations`).
        output_dir (`str`, *optional*): where the Trainer writes its checkpoints (`config.save_steps`); a temporary
            folder when not given. Not the final model: save that with `result.save_pretrained`.
        resume_from_checkpoint (`str` or `bool`, *optional*): a Trainer checkpoint to resume from (`True`: the
            latest complete one in `output_dir`; a folder left half-written by a stopped save is skipped). Pass the
            same pruned model and config as the interrupted run.
        allow_dense (`bool`, *optional*, defaults to `False`): fine-tune a model with no pruned zeros anyway.
        dtype, device (*optional*): dtype to load in; device to train on (default: the Trainer's choice).
        progress (`bool`, *optional*, defaults to `True`): show the Trainer's progress bar.
        gradient_checkpointing (`bool`, *optional*, defaults to `False`): recompute activations in the backward pass
            (less memory, about a third more time; how the run executes, not recorded with the recipe).
        prune_config, calibration, base_model (*optional*): what is known of the pruning run, for the saved
            checkpoint (read from the checkpoint when `model_or_path` is a folder; `PruneResult.recover` passes them).
        callbacks (`list[TrainerCallback]`, *optional*): more callbacks for the Trainer (logging, early stopping...).
        load_kwargs: passed to `AutoModelForCausalLM.from_pretrained` when `model_or_path` is a Hub id or a plain
            folder (`revision`, `cache_dir`, `trust_remote_code`...); the teacher gets them too, except `revision`.

    Returns:
        `RecoveryResult`: `.model` (a plain transformers model, in eval mode), `.tokenizer`, `.report`,
        `save_pretrained`, `push_to_hub`.

    Raises:
        `UnsupportedModelError`: no pruned zeros (without `allow_dense`); `CheckpointError`: the mask was lost (the
        sparsity metadata records more zeros than the weights hold); `DataError`: missing, empty or too short data;
        `ConfigError`: an invalid option; `NumericalError`: the loss became non-finite (the error's `result` holds
        the model with the weights of the last good step).

    Example:
        ```python
        from optimum_dpruner import RecoveryConfig, recover

        result = recover("smollm2-medical-50", "builtin:general", "builtin:medical", RecoveryConfig(max_steps=96))
        result.save_pretrained("smollm2-medical-50-recovered")
        ```
    """
    from transformers import set_seed

    from .trainer import LossCurve, RecoveryTrainer, resume_point, training_arguments

    if config is None:
        config = RecoveryConfig()
    elif isinstance(config, dict):
        config = RecoveryConfig.from_dict(config)
    elif not isinstance(config, RecoveryConfig):
        raise ConfigError(f"config={config!r} must be a RecoveryConfig or a dict of its options.")
    group = current_process_group()
    config.per_device_batch_size(group.num_processes)  # refuse a batch that does not split, before any work
    model, tokenizer, side_car = _load(model_or_path, tokenizer, dtype, device, load_kwargs)
    if tokenizer is None:
        raise DataError("a tokenizer is needed to cut the training windows; pass tokenizer=.")
    targets = target_names(model)
    masks = capture_masks(model, targets)
    sparsity = check_masks(model, masks, allow_dense)
    prune_config = _prune_config(model, side_car, prune_config, sparsity)
    calibration = calibration if calibration is not None else side_car.get("calibration", {})
    base_model = base_model or side_car.get("base_model")
    if general_ds is None and config.domain_share < 1:
        general_ds = DEFAULT_GENERAL_DATASET
    stream, fingerprints = build_stream(general_ds, domain_ds, tokenizer, config, model.config)
    evaluation = _eval_windows(eval_ds, tokenizer, config, model.config, eval_windows)
    teacher_model = _teacher(teacher, base_model, dtype, load_kwargs) if config.distill_weight > 0 else None

    set_seed(config.seed)
    report = RecoveryReport(mode=config.mode, num_processes=group.num_processes, sparsity_before=sparsity,
                            data=fingerprints)
    if config.mode == "lora":
        from .lora import add_masked_lora

        train_model = add_masked_lora(model, select(targets, config.lora_targets), config.lora_r, config.lora_alpha,
                                      config.lora_dropout)
        if gradient_checkpointing:
            train_model.enable_input_require_grads()
        params = [p for p in train_model.parameters() if p.requires_grad]
        keeper = contextlib.nullcontext()
    else:
        train_model = model
        params = _trainable(model, config, targets)
        keeper = MaskKeeper(model, masks)
    curve = LossCurve()
    # the mask keeper first: any other callback's on_optimizer_step already sees the re-zeroed weights
    callbacks = ([keeper] if isinstance(keeper, MaskKeeper) else []) + [curve, FiniteGradients(params), *(callbacks or [])]
    with contextlib.ExitStack() as stack:
        folder = os.fspath(output_dir) if output_dir is not None else stack.enter_context(
            tempfile.TemporaryDirectory(prefix="dpruner-recovery-"))
        args = training_arguments(config, folder, num_processes=group.num_processes, device=device, progress=progress,
                                  has_eval=evaluation is not None, gradient_checkpointing=gradient_checkpointing)
        trainer = RecoveryTrainer(model=train_model, args=args, train_dataset=stream, eval_dataset=evaluation,
                                  callbacks=callbacks, teacher=teacher_model, recovery_config=config)
        sharded = "FSDP" if trainer.is_fsdp_enabled else "DeepSpeed" if trainer.is_deepspeed_enabled else None
        if sharded:  # the mask's gradient hooks and re-zeroing work on whole parameters, which these shard
            raise ConfigError(f"recovery does not run under {sharded} (it shards the parameters whose pruned entries "
                              "the mask keeps); launch it with DDP (accelerate launch --multi_gpu, or torchrun) or in one "
                              "process.")
        if not progress:
            from transformers.trainer_callback import PrinterCallback

            trainer.remove_callback(PrinterCallback)  # it prints every log line when the progress bar is off
        if teacher_model is not None:
            teacher_model.to(trainer.args.device)
        resume = resume_point(resume_from_checkpoint, folder)
        failure = None
        try:
            with StageMonitor().measure(report, "recovery"), keeper:
                trainer.train(resume_from_checkpoint=resume)
        except NumericalError as e:
            failure = e
            report.stopped = str(e)
    if config.mode == "lora":
        from .lora import merge_masked_lora

        model = merge_masked_lora(train_model)
    model.requires_grad_(True)
    model.eval()
    report.steps = trainer.state.global_step
    report.tokens = report.steps * config.batch_size * config.seq_len
    report.losses = curve.train
    report.evaluations = curve.eval
    masks = {n: m.to(model.get_submodule(n).weight.device) for n, m in masks.items()}
    report.unmasked_after = count_unmasked(model, masks)
    zeros = sum(int(model.get_submodule(n).weight.eq(0).sum()) for n in targets)
    report.sparsity_after = zeros / sum(m.numel() for m in masks.values())
    if isinstance(getattr(model.config, SPARSITY_KEY, None), dict):
        report.verified = verify_sparsity(model).ok
    result = RecoveryResult(model, tokenizer, report, config, prune_config, calibration, base_model, targets)
    if report.unmasked_after:
        raise NumericalError(f"{report.unmasked_after} pruned weights are non-zero after recovery; this is a bug, "
                             "please report it with the config.")
    if failure is not None:
        failure.result = result
        raise failure
    logger.info("%s", report)
    return result
