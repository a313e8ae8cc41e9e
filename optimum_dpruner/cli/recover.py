"""`optimum-cli dpruner recover`: fine-tune a pruned model on general + domain text, keeping every pruned zero.

Every `RecoveryConfig` field is a flag named after it with dashes (`learning_rate` -> `--learning-rate`); `--config`
loads a saved recipe (a JSON file, or a recovered folder) and the flags typed override it. Registered in
`optimum_dpruner.cli.DPrunerCommand.SUBCOMMANDS`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import types
import typing
from typing import Any

from ..recovery.config import RECOVERY_MODES, SCHEDULERS, RecoveryConfig
from ..tables import format_pairs
from .arguments import (
    DATA_FLAG_NAMES,
    add_hub_arguments,
    add_model_and_data_arguments,
    add_model_loading_arguments,
    loading_options,
    push_folder,
)
from .base import DPrunerCLICommand
from .exits import RunFailure, UsageError
from .output import disable_progress_bars, status
from .flags import AUTO_OR_BOOL_CHOICES, auto_or_bool

__all__ = ["RecoverCommand", "RECOVERY_FLAGS", "load_recovery_config_file", "recovery_config_from_args"]

#: field name -> flag, for every `RecoveryConfig` field
RECOVERY_FLAGS: dict[str, str] = {f.name: "--" + f.name.replace("_", "-") for f in dataclasses.fields(RecoveryConfig)}
_CHOICES = {"mode": list(RECOVERY_MODES), "lr_scheduler_type": list(SCHEDULERS), "train_params": ["targets", "all"]}

_EXAMPLES = """
  # recover a pruned model: masked LoRA merged without losing a zero, 75% domain windows, 192 steps of 256 tokens
  optimum-cli dpruner recover -m smollm2-medical-50 --general-dataset builtin:general \\
      --domain-dataset builtin:medical -o smollm2-medical-50-recovered

  # masked full fine-tuning, a token budget, distillation from the dense model
  optimum-cli dpruner recover -m smollm2-medical-50 --domain-dataset builtin:medical --mode full \\
      --max-tokens 50000 --distill-weight 0.5 --teacher HuggingFaceTB/SmolLM2-135M-Instruct -o out

  # resumable: Trainer checkpoints every 16 steps; after an interruption, the same command with --resume
  optimum-cli dpruner recover -m pruned --domain-dataset notes.jsonl --save-steps 16 --training-dir ckpt -o out
  optimum-cli dpruner recover -m pruned --domain-dataset notes.jsonl --save-steps 16 --training-dir ckpt -o out --resume
"""


def _base_type(annotation: Any) -> Any:
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(args) == 1:
        return args[0]
    return annotation


def _typed(kind: type, what: str):
    def convert(text: str):
        try:
            return kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None

    convert.__name__ = kind.__name__
    return convert


def add_recovery_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per `RecoveryConfig` field, defaulting to "not given" so that `--config` provides the base."""
    group = parser.add_argument_group("recovery options (RecoveryConfig)", "Each flag overrides the same key of --config.")
    hints = typing.get_type_hints(RecoveryConfig)
    helps = RecoveryConfig.field_help()
    for f in dataclasses.fields(RecoveryConfig):
        kind = _base_type(hints[f.name])
        default = "" if f.default in (None, dataclasses.MISSING) or isinstance(f.default, bool) else f" (default: {f.default})"
        kwargs: dict[str, Any] = {"dest": f.name, "default": argparse.SUPPRESS, "help": helps[f.name] + default}
        if kind is bool:
            kwargs.update(action=argparse.BooleanOptionalAction, help=helps[f.name] + f" (default: {'on' if f.default else 'off'})")
        elif typing.get_origin(kind) is list:
            kwargs.update(nargs="*", metavar="PATTERN")
        elif kind == str | bool:
            kwargs.update(type=auto_or_bool, choices=AUTO_OR_BOOL_CHOICES, metavar="{auto,true,false}")
        elif f.name in _CHOICES:
            kwargs["choices"] = _CHOICES[f.name]
        elif kind is int:
            kwargs.update(type=_typed(int, "an integer"), metavar="N")
        elif kind is float:
            kwargs.update(type=_typed(float, "a number"), metavar="X")
        group.add_argument(RECOVERY_FLAGS[f.name], **kwargs)


def load_recovery_config_file(path: str, flag: str = "--config") -> dict[str, Any]:
    """A `RecoveryConfig` dict from a JSON file, or from a recovered folder's `dpruner_config.json` (errors name `flag`)."""
    from ..configuration import CONFIG_NAME

    file = os.path.join(path, CONFIG_NAME) if os.path.isdir(path) else path
    try:
        with open(file, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError) as e:
        raise UsageError(f"{flag} {path!r} could not be read as JSON ({type(e).__name__}: {e}); pass a RecoveryConfig "
                         "JSON file or a recovered folder.") from None
    if isinstance(data, dict) and isinstance(data.get("recovery"), dict):
        data = data["recovery"].get("config") or {}
    elif isinstance(data, dict) and isinstance(data.get("config"), dict):
        raise UsageError(f"{flag} {path!r} is a pruned folder without a recovery; pass a RecoveryConfig JSON file or a "
                         "recovered folder.")
    if not isinstance(data, dict):
        raise UsageError(f"{flag} {path!r} holds no JSON object; write the options as {{\"learning_rate\": 1e-4, ...}}.")
    return data


def recovery_config_from_args(args: argparse.Namespace, config_path: str | None = None) -> RecoveryConfig:
    """`--config` (if any) overridden by the flags typed. Raises `ConfigError` on an invalid value."""
    overrides = {name: getattr(args, name) for name in RECOVERY_FLAGS if hasattr(args, name)}
    base = load_recovery_config_file(config_path) if config_path is not None else {}
    if "max_tokens" in overrides:
        base.pop("max_steps", None)
    if "max_steps" in overrides:
        base.pop("max_tokens", None)
    return RecoveryConfig.from_dict({**base, **overrides})


class RecoverCommand(DPrunerCLICommand):
    DESCRIPTION = (
        "Fine-tune a pruned model to recover what pruning lost, on a mix of general and domain text, while every\n"
        "pruned weight stays exactly zero: masked full fine-tuning or a masked LoRA adapter (merged without losing a\n"
        "zero), optionally distilled from the dense model, on transformers' Trainer (DDP with accelerate launch)."
    )
    EXAMPLES = _EXAMPLES
    FLAG_NAMES = {**RECOVERY_FLAGS, **DATA_FLAG_NAMES, "allow_dense": "--allow-dense", "teacher": "--teacher"}

    @staticmethod
    def parse_args(parser: argparse.ArgumentParser) -> None:
        io = add_model_and_data_arguments(parser, "The pruned model: a folder written by 'prune', or a Hub id.",
                                          "General text (default: builtin:general).",
                                          "Domain text (needed unless --domain-share 0).")
        io.add_argument("--eval-dataset", nargs="*", default=None, metavar="DATASET",
                        help="Evaluated every --eval-steps steps (loss per set in the summary).")
        io.add_argument("--teacher", default=None, metavar="MODEL",
                        help="The dense model for --distill-weight (default: the base model recorded in --model).")
        io.add_argument("--config", default=None, metavar="PATH", help="A RecoveryConfig JSON file, or a recovered folder.")
        io.add_argument("--allow-dense", action="store_true", help="Fine-tune a model that has no pruned zeros anyway.")
        add_recovery_arguments(parser)
        out = parser.add_argument_group("output")
        out.add_argument("-o", "--output", required=True, metavar="DIR", help="Folder to write the recovered model to.")
        out.add_argument("--overwrite", action="store_true", help="Replace --output if it is a folder this library wrote.")
        out.add_argument("--compressed", action="store_true", help="Store the pruned matrices as bitmask + kept values.")
        out.add_argument("--training-dir", default=None, metavar="DIR",
                         help="Where the Trainer writes its checkpoints (--save-steps); default: a temporary folder.")
        out.add_argument("--resume", nargs="?", const=True, default=None, metavar="CHECKPOINT",
                         help="Resume from a Trainer checkpoint (default: the latest in --training-dir).")
        out.add_argument("--push-to-hub", default=None, metavar="REPO", help="Push the output folder to this Hub repo.")
        add_hub_arguments(parser, title="Hub options (with --push-to-hub)")
        add_model_loading_arguments(parser)
        parser.add_argument("--gradient-checkpointing", action="store_true",
                            help="Recompute activations in the backward pass (less memory, more time).")
        parser.add_argument("--no-progress", action="store_true", help="Hide the progress bars.")
        DPrunerCLICommand.add_common_arguments(parser)

    def _check_arguments(self):
        """Everything that can be checked before loading the model; returns the config and the output path."""
        args = self.args
        if args.config is not None and not os.path.exists(args.config):
            raise UsageError(f"--config {args.config!r} does not exist; pass a RecoveryConfig JSON file or a recovered folder.")
        config = recovery_config_from_args(args, args.config)
        source = os.path.expanduser(args.model)
        if not os.path.exists(source) and (source.startswith((os.sep, ".", "~")) or source.count("/") != 1):
            raise UsageError(f"--model {args.model!r} does not exist; pass the folder written by 'optimum-cli dpruner prune'.")
        for flag, value in (("--general-dataset", args.general_dataset), ("--domain-dataset", args.domain_dataset)):
            if value is not None and not value.strip():
                raise UsageError(f"{flag} {value!r} is empty; pass a dataset, or leave the flag out.")
        if args.domain_dataset is None and config.domain_share > 0:
            raise UsageError(f"--domain-dataset is needed: --domain-share is {config.domain_share}; pass the domain text "
                             "(e.g. builtin:medical), or --domain-share 0.")
        if args.resume is True and args.training_dir is None:
            raise UsageError("--resume without a checkpoint path needs --training-dir (where the checkpoints are).")
        if config.save_steps and args.training_dir is None:
            raise UsageError(f"--save-steps {config.save_steps} needs --training-dir (the folder for the Trainer's checkpoints).")
        if args.resume not in (None, True) and not os.path.isdir(args.resume):
            raise UsageError(f"--resume {args.resume!r} is not a folder; pass a checkpoint-N folder of --training-dir.")
        from ..checkpoint.folders import check_output_folder

        output = check_output_folder(args.output, args.overwrite, protected=[source] if os.path.exists(source) else [],
                                     argument="--output")
        if args.device is not None:
            from ..runtime.devices import check_device

            check_device(args.device, "--device", fix="pass --device cpu, or leave --device out.")
        return config, output

    def execute(self) -> int:
        args = self.args
        config, output = self._check_arguments()
        from ..errors import DPrunerError, NumericalError
        from ..recovery.run import recover

        if args.no_progress:
            disable_progress_bars()
        status(f"recovering {args.model} ({config.mode}, {config.steps} steps of {config.batch_size} x {config.seq_len} tokens)")
        eval_ds = {os.path.basename(d.rstrip("/")) or d: d for d in args.eval_dataset} if args.eval_dataset else None
        try:
            result = recover(args.model, args.general_dataset, args.domain_dataset, config, teacher=args.teacher,
                             eval_ds=eval_ds, output_dir=args.training_dir, resume_from_checkpoint=args.resume,
                             allow_dense=args.allow_dense, dtype=args.dtype, device=args.device,
                             progress=not args.no_progress, gradient_checkpointing=args.gradient_checkpointing,
                             **loading_options(args))
        except NumericalError as e:
            hint = (f" Resume from the last checkpoint in {args.training_dir} with a lower --learning-rate."
                    if args.training_dir else "")
            raise RunFailure(f"{e} Nothing was written to {output}.{hint}") from e
        status(f"saving to {output}")
        result.save_pretrained(output, overwrite=args.overwrite, **({"compressed": True} if args.compressed else {}))
        rows = []
        if args.push_to_hub is not None:
            status(f"pushing to {args.push_to_hub}")
            try:
                rows.append(("pushed", push_folder(args, output, args.push_to_hub)))
            except DPrunerError as e:
                raise RunFailure(f"--push-to-hub {args.push_to_hub!r}: {e} The model is saved in {output}; push it again "
                                 f"with 'optimum-cli dpruner push {output} {args.push_to_hub}'.") from e
        report = result.report
        loss = f"{report.losses[0][1]:.4f} -> {report.losses[-1][1]:.4f}" if report.losses else "-"
        rows = [
            ("model", args.model),
            ("mode", config.mode),
            ("steps", f"{report.steps} ({report.tokens:,} tokens, {report.num_processes} process(es))"),
            ("loss", loss),
            ("sparsity", f"{report.sparsity_before:.4f} before, {report.sparsity_after:.4f} after "
                         f"({report.unmasked_after} pruned weights made non-zero)"),
            *[(f"eval {k}", f"{v:.4f}") for k, v in (report.evaluations[-1][1].items() if report.evaluations else [])],
            ("time", f"{report.seconds:.1f}s ({report.tokens_per_second:.0f} tokens/s)"),
            ("peak memory", f"{report.peak_memory_bytes / 2**20:.0f} MiB"),
            ("output", output),
        ] + rows
        print(format_pairs(rows, title="\nsummary"))
        return 0

