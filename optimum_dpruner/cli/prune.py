"""`optimum-cli dpruner prune`: prune a causal LM and save it (and optionally push it to the Hub)."""

from __future__ import annotations

import argparse
import os

from ..models.hub_ids import is_hub_id, is_repo_id
from ..tables import format_pairs
from .arguments import (
    DATA_FLAG_NAMES,
    add_hub_arguments,
    add_model_and_data_arguments,
    add_model_loading_arguments,
    loading_options,
    model_source,
    push_folder,
    resolve_device,
)
from .base import DPrunerCLICommand
from .exits import RunFailure, UsageError
from .flags import CONFIG_FLAGS, add_config_arguments, config_from_args
from .output import disable_progress_bars, status

__all__ = ["PruneCommand", "load_model_or_fail", "check_model_argument"]

_EXAMPLES = """
  # D-Pruner on the embedded SmolLM2-135M-Instruct (no -m): general + domain calibration, 50% unstructured
  optimum-cli dpruner prune --domain-dataset builtin:medical --sparsity 0.5 --output smollm2-medical-50

  # a Hub model at a given revision
  optimum-cli dpruner prune -m HuggingFaceTB/SmolLM2-360M-Instruct --revision main \\
      --domain-dataset builtin:legal --output smollm2-360m-legal-50

  # SparseGPT baseline with a 2:4 pattern on your own text, pushed to the Hub
  optimum-cli dpruner prune -m ./my-model --general-dataset notes.jsonl --text-column body \\
      --method sparsegpt --pattern 2:4 --output my-model-2of4 --push-to-hub me/my-model-2of4

  # prune, then recover (masked fine-tuning on the same general + domain text, RecoveryConfig's defaults)
  optimum-cli dpruner prune --domain-dataset builtin:medical --recover -o smollm2-medical-50-recovered

  # re-run a saved configuration with one option changed
  optimum-cli dpruner prune -m ./my-model --config smollm2-medical-50 --sparsity 0.6 -o out-60

Datasets: 'builtin:general', 'builtin:medical', 'builtin:legal', a .json/.jsonl/.txt/.csv/.parquet
file (optionally .gz), a folder, or a Hub dataset id.
"""


def check_model_argument(model: str, flag: str = "--model") -> None:
    """`UsageError` when `--model` (or `flag`) is a local path that does not exist and cannot be a Hub id either.

    A missing path that reads as a Hub id (`name`, `owner/name`: `models.hub_ids.is_hub_id`) is tried on the Hub;
    if that fails too, the error says that nothing is at the local path.
    """
    if model_source(model) is None:
        return
    if not is_hub_id(model) and not os.path.exists(os.path.expanduser(model)):
        raise UsageError(
            f"{flag} {model!r} does not exist (nothing at {os.path.abspath(os.path.expanduser(model))!r}); pass a "
            "model folder, a .gguf file or a Hub model id."
        )


def _local_weight_bytes(model: str) -> int:
    """Bytes of the weight files of a local model folder (0 when it is not one): what the output will need."""
    folder = os.path.expanduser(model) if model_source(model) is not None else ""
    if not os.path.isdir(folder):
        return 0
    return sum(
        os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder) if f.endswith((".safetensors", ".bin"))
    )


def load_model_or_fail(load, model: str, flag: str = "--model"):
    """Call `load()`; turn a failure into a `RunFailure` naming `--model` (or `flag`)."""
    from ..errors import DPrunerError

    try:
        return load()
    except DPrunerError as e:
        raise RunFailure(f"{flag} {model!r}: {e}") from e
    except (OSError, ValueError) as e:
        raise RunFailure(
            f"{flag} {model!r} could not be loaded ({type(e).__name__}: {e}); pass a folder with config.json, "
            "a .gguf file or a Hub model id."
        ) from e


def _default_model_folder() -> str:
    """Where the embedded default model is converted to (protected from --output and --save-importance)."""
    from ..models.default_model import default_model_path

    return default_model_path()


class PruneCommand(DPrunerCLICommand):
    DESCRIPTION = (
        "Prune a decoder-only causal LM with D-Pruner or a baseline (SparseGPT, Wanda, magnitude) and save it as a\n"
        "plain transformers checkpoint with its sparsity metadata. Every DPrunerConfig option has a flag; --config\n"
        "loads a saved configuration and the flags typed override it."
    )
    EXAMPLES = _EXAMPLES
    FLAG_NAMES = {
        **CONFIG_FLAGS,
        **DATA_FLAG_NAMES,
        "save_importance": "--save-importance",
        "importance": "--importance",
        "dtype": "--dtype",
    }

    @staticmethod
    def parse_args(parser: argparse.ArgumentParser) -> None:
        io = add_model_and_data_arguments(
            parser,
            model="Model to prune: a folder, a .gguf file or a Hub model id.",
            default_model=True,
            general="General calibration data (default: builtin:general).",
            domain="Domain calibration data: D-Pruner's, or mixed into a baseline's statistics (--domain-weight).",
        )
        io.add_argument(
            "--importance", default=None, metavar="PATH",
            help="D-Pruner scores saved by --save-importance: no gradient pass (the reconstruction pass of the default recipe "
                 "still reads the data).",
        )
        io.add_argument(
            "--config", default=None, metavar="PATH", help="A DPrunerConfig JSON file, or a pruned model folder."
        )
        parser.add_argument(
            "--preset", choices=["default", "paper"], default="default",
            help="paper: D-Pruner exactly as the paper (DPrunerConfig.paper(): general SparseGPT stage, lambda 0.1, "
                 "mask from I, no reconstruction); --config and the flags typed override it.",
        )
        add_config_arguments(parser)
        out = parser.add_argument_group("output")
        out.add_argument("-o", "--output", metavar="DIR", help="Folder to write the pruned model to (required unless --dry-run).")
        out.add_argument("--overwrite", action="store_true", help="Replace --output if it exists.")
        out.add_argument(
            "--compressed", action="store_true", help="Store the pruned matrices as bitmask + kept values (smaller)."
        )
        out.add_argument("--save-importance", default=None, metavar="PATH", help="Also save D-Pruner's scores here.")
        out.add_argument("--push-to-hub", default=None, metavar="REPO", help="Push the output folder to this Hub repo.")
        recovery = parser.add_argument_group("recovery (with --recover)")
        recovery.add_argument(
            "--recover", action="store_true",
            help="After pruning, fine-tune on the same general + domain data keeping every pruned zero, and save the "
                 "recovered model ('optimum-cli dpruner recover' has every option).",
        )
        recovery.add_argument(
            "--recovery-config", default=None, metavar="PATH",
            help="A RecoveryConfig JSON file, or a recovered folder (default: RecoveryConfig()).",
        )
        add_hub_arguments(parser, title="Hub options (with --push-to-hub)")
        add_model_loading_arguments(parser)
        parser.add_argument("--no-progress", action="store_true", help="Hide the progress bars.")
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Print the expected peak memory and time of each stage, then stop (no weights are loaded).",
        )
        DPrunerCLICommand.add_common_arguments(parser)

    def _check_arguments(self):
        """Check everything that can be checked before loading the model; return the config and the output path."""
        args = self.args
        if args.config is not None and not os.path.exists(args.config):
            raise UsageError(f"--config {args.config!r} does not exist; pass a JSON file or a pruned model folder.")
        config = config_from_args(args, args.config, preset=args.preset)
        if args.output is not None and not args.output.strip():  # abspath('') is the current directory, which "exists"
            raise UsageError(f"--output {args.output!r} is empty; pass the folder to write the pruned model to.")
        if args.output is None and not args.dry_run:
            raise UsageError("--output is required: pass the folder to write the pruned model to (or --dry-run).")
        output = os.path.abspath(os.path.expanduser(args.output)) if args.output is not None else None
        if output is not None and os.path.exists(output) and not args.overwrite and not args.dry_run:
            raise UsageError(f"--output {args.output!r} already exists; pass --overwrite or choose another folder.")
        check_model_argument(args.model)
        for flag, value in (("--general-dataset", args.general_dataset), ("--domain-dataset", args.domain_dataset)):
            if value is not None and not value.strip():
                raise UsageError(f"{flag} {value!r} is empty; pass a dataset, or leave the flag out (general: builtin:general).")
        from ..data.calibration import check_data_source
        from ..errors import DataError

        for flag, value in (("--general-dataset", args.general_dataset), ("--domain-dataset", args.domain_dataset)):
            try:  # a missing path, a folder of mixed kinds, a model folder: before the model is loaded
                check_data_source(value)
            except DataError as e:
                raise UsageError(f"{flag} {value!r}: {e}") from None
        if output is not None and not args.dry_run:
            from ..checkpoint.folders import check_output_folder

            # before any work: the folder can be written, has room, and --overwrite would delete only our files
            source = os.path.expanduser(args.model) if model_source(args.model) is not None else _default_model_folder()
            check_output_folder(
                output, args.overwrite, protected=[source] if os.path.exists(source) else [],
                needed_bytes=_local_weight_bytes(args.model),
            )
            if args.save_importance is not None:
                from ..checkpoint.importance import check_importance_target

                # never into the input model or the checkpoint about to be saved, never over a file we did not
                # write, over earlier scores only with --overwrite: all before the model is loaded
                check_importance_target(
                    args.save_importance, args.overwrite, argument="save_importance", overwrite_hint="--overwrite",
                    protected={
                        **({os.path.abspath(source): "the model being pruned"} if os.path.isdir(source) else {}),
                        output: "the checkpoint being saved (--output)",
                    },
                )
        if args.importance is not None and not os.path.exists(args.importance):
            raise UsageError(f"--importance {args.importance!r} does not exist; pass a file written by --save-importance.")

        from ..data.calibration import BUILTIN_DATASETS
        from ..errors import DPrunerError
        from ..methods import build_method, option_owners
        from ..stages.calibration import DEFAULT_GENERAL_DATASET
        from ..stages.checks import CLI_NAMES, check_data_arguments

        if args.device is not None:
            from ..runtime.devices import check_device

            check_device(args.device, "--device", fix="pass --device cpu, or leave --device out.")
        method = build_method(config)
        self.prune_data = self._prune_data(method)
        try:  # the library's rules, worded with the flags
            check_data_arguments(method, *self.prune_data, args.importance, DEFAULT_GENERAL_DATASET, CLI_NAMES)
        except DPrunerError as e:
            raise UsageError(str(e)) from None
        if args.save_importance is not None and not method.accepts_scores:
            raise UsageError(f"--save-importance: --method {config.method} computes no scores to save; drop it.")
        owners = option_owners()
        typed = [n for n in owners if hasattr(args, n) and n not in method.own_options]  # flags default to "not given"
        if typed:
            users = "/".join(owners[typed[0]])
            raise UsageError(
                f"{CONFIG_FLAGS[typed[0]]} is used only by --method {users}, so with --method {config.method} it would "
                f"have no effect; drop it, or choose --method {owners[typed[0]][0]}."
            )
        for flag, value in (("--general-dataset", args.general_dataset), ("--domain-dataset", args.domain_dataset)):
            if isinstance(value, str) and value.startswith("builtin:") and value[8:] not in BUILTIN_DATASETS:
                choices = ", ".join(f"builtin:{n}" for n in BUILTIN_DATASETS)
                raise UsageError(f"{flag} {value!r} is not a bundled dataset; choose one of {choices}.")
        if args.push_to_hub is not None and not is_repo_id(args.push_to_hub):
            raise UsageError(f"--push-to-hub {args.push_to_hub!r} is not a repo id; pass 'name' or 'owner/name'.")
        self.recovery = self._recovery_config()
        return config, output

    def _prune_data(self, method) -> tuple:
        """(general, domain) for `prune()`: the datasets given, except that with --recover a method that reads no
        calibration data gets none (the datasets are then the recovery's)."""
        from ..stages.checks import reads_calibration_data

        args = self.args
        if args.recover and not reads_calibration_data(method, args.importance):
            return None, None
        return args.general_dataset, args.domain_dataset

    def _recovery_config(self):
        """The `RecoveryConfig` of `--recover` (None without it), checked before any work."""
        args = self.args
        if args.recovery_config is not None and not args.recover:
            raise UsageError("--recovery-config is used only with --recover; add --recover, or drop it.")
        if not args.recover:
            return None
        if args.dry_run:
            raise UsageError("--dry-run estimates the pruning only; drop --recover (or --dry-run).")
        if args.recovery_config is not None and not os.path.exists(args.recovery_config):
            raise UsageError(f"--recovery-config {args.recovery_config!r} does not exist; pass a RecoveryConfig JSON file "
                             "or a recovered folder.")
        from ..recovery.config import RecoveryConfig
        from .recover import load_recovery_config_file

        config = RecoveryConfig.from_dict(load_recovery_config_file(args.recovery_config, "--recovery-config")
                                          if args.recovery_config is not None else {})
        if args.domain_dataset is None and config.domain_share > 0:
            raise UsageError(f"--recover needs --domain-dataset: its stream is {config.domain_share:.0%} domain windows; "
                             'pass the domain text, or a --recovery-config with "domain_share": 0.')
        return config

    def execute(self) -> int:
        args = self.args
        config, output = self._check_arguments()
        from ..errors import DPrunerError
        from ..pruner import DPruner

        source, options = model_source(args.model), loading_options(args)
        device = resolve_device(args, config.execution_device)
        if args.dry_run:
            from ..data.calibration import check_seq_len
            from ..estimation import estimate
            from ..models.loading import load_model_config

            if source is None:
                from ..models.default_model import ensure_default_model

                source = load_model_or_fail(ensure_default_model, args.model)
            check_seq_len(config.seq_len, load_model_or_fail(lambda: load_model_config(source, **options), args.model))
            status(f"estimating {config.method} on {args.model} (architecture only, no weights loaded)")
            print(load_model_or_fail(lambda: estimate(source, config, dtype=args.dtype, device=device, **options), args.model))
            return 0
        if args.no_progress:
            disable_progress_bars()
        status(f"loading {args.model} on {device or 'cpu'}")
        pruner = load_model_or_fail(
            lambda: DPruner.from_pretrained(source, config=config, dtype=args.dtype, device=device, **options), args.model
        )
        from ..methods import build_method
        from ..stages.checks import needs_calibration_windows

        if pruner.tokenizer is None and needs_calibration_windows(build_method(config), args.importance):
            raise RunFailure(
                f"--model {args.model!r} has no tokenizer, which --method {config.method} needs to cut calibration "
                "data; save the tokenizer into the model folder."
            )
        status(f"pruning with {config.method}, sparsity {config.sparsity:g}, pattern {config.pattern}")
        result = pruner.prune(*self.prune_data, importance=args.importance, progress=not args.no_progress)
        rows = []
        if self.recovery is not None:
            prune_report = result.report
            status(f"recovering ({self.recovery.mode}, {self.recovery.steps} steps of {self.recovery.batch_size} x "
                   f"{self.recovery.seq_len} tokens)")
            recovered = result.recover(args.general_dataset, args.domain_dataset, self.recovery,
                                       progress=not args.no_progress)
            r = recovered.report
            rows.append(("recovery", f"{r.steps} steps, {r.tokens:,} tokens in {r.seconds:.1f}s; pruned weights made "
                                     f"non-zero: {r.unmasked_after}"))
        status(f"saving to {output}")
        saved = recovered if self.recovery is not None else result
        saved.save_pretrained(output, overwrite=args.overwrite, **({"compressed": True} if args.compressed else {}))
        if args.save_importance is not None:
            rows.append(("importance", result.save_importance(args.save_importance, overwrite=args.overwrite)))
        if args.push_to_hub is not None:
            status(f"pushing to {args.push_to_hub}")
            try:
                rows.append(("pushed", push_folder(args, output, args.push_to_hub)))
            except DPrunerError as e:
                raise RunFailure(
                    f"--push-to-hub {args.push_to_hub!r}: {e} The model is saved in {output}; push it again with "
                    f"'optimum-cli dpruner push {output} {args.push_to_hub}'."
                ) from e
        print(format_pairs(self._summary(prune_report if self.recovery is not None else result.report, output) + rows,
                           title="\nsummary"))
        return 0

    def _summary(self, report, output: str) -> list[tuple[str, str]]:
        per_matrix = [m.sparsity for m in report.matrices.values()] or [0.0]
        total = sum(report.stage_seconds.values())
        stages = ", ".join(f"{k} {v:.1f}s" for k, v in report.stage_seconds.items())
        peak = max(report.peak_rss_bytes.values(), default=0) / 2**20
        rows = [
            ("model", self.args.model),
            ("method", f"{report.method} ({report.pattern})"),
            ("target sparsity", f"{report.target_sparsity:.4f}"),
            (
                "achieved",
                f"{report.sparsity:.4f} over {len(report.matrices)} matrices "
                f"(min {min(per_matrix):.4f}, max {max(per_matrix):.4f})",
            ),
            ("all parameters", f"{report.model_sparsity:.4f} zeros of {report.total_parameters:,}"),
            ("time", f"{total:.1f}s ({stages})"),
            ("peak memory", f"{peak:.0f} MiB RSS"),
            ("output", output),
        ]
        return rows
