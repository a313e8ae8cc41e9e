"""`optimum-cli dpruner evaluate`: strided perplexity and the downstream tasks, each with a 95% bootstrap interval,
and greedy continuations of prompts (the model's, and a reference model's beside them)."""

from __future__ import annotations

import argparse
import json
import math
import os

from ..tables import format_table
from .arguments import (
    DEFAULT_MODEL,
    DEFAULT_MODEL_HELP,
    add_model_loading_arguments,
    loading_options,
    model_source,
    resolve_device,
)
from .base import DPrunerCLICommand
from .exits import RunFailure, UsageError
from .flags import AUTO_OR_BOOL_CHOICES, auto_or_bool
from .output import disable_progress_bars, status
from .prune import check_model_argument, load_model_or_fail
from .samples import DEFAULT_MAX_NEW_TOKENS, continue_prompts, format_samples

__all__ = ["EvaluateCommand", "TASK_NAMES", "RESAMPLING_UNITS"]

#: `optimum_dpruner.evaluation.TASKS` and `.RESAMPLING_UNITS` (listed here so that `--help` imports no torch; a
#: test keeps them equal)
TASK_NAMES = ("pubmedqa", "casehold", "billsum", "pubmed_title", "billsum_title", "wiki_next", "billsum_next")
RESAMPLING_UNITS = ("windows", "documents")

_EXAMPLES = """
  # perplexity of a pruned model on the bundled medical and general test texts
  optimum-cli dpruner evaluate --model smollm2-medical-50 --dataset builtin:medical builtin:general

  # the first 16 windows of 1024 tokens of your own file, as JSON (printed, and written to results.json)
  optimum-cli dpruner evaluate -m ./my-model --dataset eval.jsonl --window 1024 --limit 16 --json --output results.json

  # the embedded dense SmolLM2-135M-Instruct (no -m), for reference
  optimum-cli dpruner evaluate --dataset builtin:medical --limit 8

  # zero-shot PubMedQA and CaseHOLD on 50 items each (seeded subset), with medical perplexity
  optimum-cli dpruner evaluate -m smollm2-medical-50 --task pubmedqa casehold --dataset builtin:medical --limit 50

  # the matching tasks on all their test items: medical, legal and general
  optimum-cli dpruner evaluate -m smollm2-medical-50 --task pubmed_title billsum_title wiki_next

  # general perplexity with an interval over whole articles, not windows
  optimum-cli dpruner evaluate -m smollm2-medical-50 --dataset builtin:general --resample-by documents

  # what the pruned model writes, beside what the embedded dense model writes (no perplexity run)
  optimum-cli dpruner evaluate -m smollm2-medical-50 --prompt "The patient was admitted with" --reference default
"""


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer, e.g. 512")
    return value


def _check_output_file(path: str | None) -> str | None:
    """The absolute path of `--output`, checked before any work: not a folder, in a folder that exists."""
    if path is None:
        return None
    full = os.path.abspath(os.path.expanduser(path))
    if not path.strip() or os.path.isdir(full):
        raise UsageError(f"--output {path!r} is a folder; pass the path of a JSON file to write, e.g. results.json.")
    if not os.path.isdir(os.path.dirname(full)):
        raise UsageError(f"--output {path!r}: the folder {os.path.dirname(full)!r} does not exist; create it first.")
    return full


def _load(name: str, flag: str, args: argparse.Namespace, options: dict, device: str | None):
    """The model and tokenizer that `flag` names, its folder, and whether it is a pruned checkpoint of this library."""
    from ..checkpoint.metadata import read_sparsity_metadata
    from ..checkpoint.serialization import load_pretrained
    from ..models.loading import load_model, load_tokenizer

    path = model_source(name)
    if path is None:
        from ..models.default_model import ensure_default_model

        path = load_model_or_fail(ensure_default_model, name, flag)
    status(f"loading {name} on {device or 'cpu'}")
    pruned = os.path.isfile(os.path.join(path, "config.json")) and read_sparsity_metadata(path) is not None
    load = load_pretrained if pruned else load_model  # load_pretrained also reads compressed folders
    model = load_model_or_fail(lambda: load(path, dtype=args.dtype, device=device, **options), name, flag)
    tokenizer = load_tokenizer(path, **options)
    if tokenizer is None:
        raise RunFailure(f"{flag} {name!r} has no tokenizer; save the tokenizer into the model folder.")
    return model, tokenizer, path, pruned


def _write_json(path: str, payload: dict) -> None:
    """Write `payload` to `path` whole or not at all (a temporary file beside it, then a rename)."""
    temporary = f"{path}.tmp-{os.getpid()}"
    try:
        with open(temporary, "w", encoding="utf-8") as f:
            json.dump(payload, f, indent=2)
            f.write("\n")
        os.replace(temporary, path)
    except OSError as e:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise RunFailure(f"--output {path!r} could not be written ({type(e).__name__}: {e}).") from e


class EvaluateCommand(DPrunerCLICommand):
    DESCRIPTION = (
        "Strided perplexity of a causal LM (pruned or not): windows of --window tokens moved by --stride, loss on\n"
        "the new tokens only. 'builtin:<name>' data sets are read from their test split. --task runs zero-shot\n"
        "tasks on their bundled test items: PubMedQA (accuracy, macro-F1), CaseHOLD (macro-F1, accuracy), BillSum\n"
        "(ROUGE-1/2/L), and the 4-way matching tasks pubmed_title, billsum_title, wiki_next, billsum_next (accuracy;\n"
        "chance 0.25); --limit then picks that many items at random by --seed. Every number comes with its 95%\n"
        "percentile bootstrap interval over windows or items (JSON: perplexity_intervals, <metric>_low / _high).\n"
        "--prompt prints the model's greedy continuation of a text, and with --reference another model's (e.g. the\n"
        "dense one's) beside it; with --prompt alone nothing else is run."
    )
    EXAMPLES = _EXAMPLES
    FLAG_NAMES = {"output": "--output", "stride": "--stride", "window": "--window", "text_column": "--text-column", "dtype": "--dtype",
                  "limit": "--limit", "max_new_tokens": "--max-new-tokens", "batch_size": "--batch-size", "add_bos": "--add-bos",
                  "prompt": "--prompt"}

    @staticmethod
    def parse_args(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("-m", "--model", default=DEFAULT_MODEL,
                            help="Model to evaluate: a folder, a .gguf file or a Hub id." + DEFAULT_MODEL_HELP)
        parser.add_argument(
            "--dataset", nargs="+", default=[], metavar="DATASET", help="Perplexity data, e.g. builtin:medical."
        )
        parser.add_argument(
            "--task", nargs="+", default=[], choices=TASK_NAMES, metavar="TASK",
            help=f"Downstream tasks: {', '.join(TASK_NAMES)}.",
        )
        parser.add_argument("--window", type=_positive, default=None, metavar="N",
                            help="Tokens per window (default: 512, or the model's maximum positions when fewer).")
        parser.add_argument("--stride", type=_positive, default=None, metavar="N",
                            help="Step between windows, in text tokens (default: the text tokens a window holds: "
                                 "--window, less one with a BOS).")
        parser.add_argument(
            "--limit", type=_positive, default=None, metavar="N",
            help="At most N windows per data set, N items per task (BillSum defaults to 20).",
        )
        parser.add_argument("--batch-size", type=_positive, default=8, metavar="N", help="Task sequences per forward pass (default: 8).")
        parser.add_argument("--prompt", action="append", default=None, metavar="TEXT",
                            help="A text for the model to continue greedily (plain text, no chat template); repeat the "
                                 "flag for more prompts. The continuation is printed and written to --output.")
        parser.add_argument("--reference", default=None, metavar="MODEL",
                            help="A second model (a folder, a .gguf file, a Hub id, or 'default': the embedded "
                                 "SmolLM2-135M-Instruct) whose continuation of each --prompt is printed beside the "
                                 "model's, e.g. the dense model it was pruned from. --trust-remote-code and --cache-dir "
                                 "apply to it; --revision names a revision of --model only.")
        parser.add_argument("--max-new-tokens", type=_positive, default=None, metavar="N",
                            help=f"Tokens to generate: per --prompt continuation (default: {DEFAULT_MAX_NEW_TOKENS}) and "
                                 "per BillSum summary (default: 128, or what the model's positions leave).")
        parser.add_argument("--seed", type=int, default=0,
                            help="Seed of the task items chosen by --limit and of the tasks' bootstrap intervals "
                                 "(default: 0; perplexity intervals always use seed 0).")
        parser.add_argument("--text-column", default="text", metavar="COLUMN", help="Column holding the text (default: text).")
        parser.add_argument(
            "--add-bos", type=auto_or_bool, choices=AUTO_OR_BOOL_CHOICES, default="auto", metavar="{auto,true,false}",
            help="Start each perplexity window and each --prompt with the tokenizer's BOS: auto (when the tokenizer "
                 "adds one), true or false (default: auto).",
        )
        parser.add_argument(
            "--resample-by", choices=RESAMPLING_UNITS, default="windows",
            help="What a perplexity interval resamples: windows, as if independent (default), or documents with all "
                 "their windows (wider where one document spans many windows; needs windows from 2 or more "
                 "documents, which --limit, keeping the first windows, may not give).",
        )
        parser.add_argument("--json", action="store_true", help="Print the results as JSON instead of a table.")
        parser.add_argument("-o", "--output", default=None, metavar="PATH",
                            help="Also write the results as JSON to this file (the --json object; replaced if it exists).")
        add_model_loading_arguments(parser)
        parser.add_argument("--no-progress", action="store_true", help="Hide the progress bars.")
        DPrunerCLICommand.add_common_arguments(parser)

    def execute(self) -> int:
        args = self.args
        args.prompt = args.prompt or []
        check_model_argument(args.model)
        if not args.dataset and not args.task and not args.prompt:
            raise UsageError("nothing to evaluate; pass --dataset (perplexity), --task (downstream tasks), --prompt (a "
                             "greedy continuation) or several of them.")
        if args.reference is not None and not args.prompt:
            raise UsageError("--reference continues the --prompt texts; pass --prompt too, e.g. --prompt 'The patient was'.")
        if args.reference is not None:
            check_model_argument(args.reference, "--reference")
        if args.stride is not None and args.window is not None and args.stride > args.window:
            raise UsageError(f"--stride {args.stride} exceeds --window {args.window}; pass a stride of at most the window.")
        output = _check_output_file(args.output)
        from ..checkpoint.metadata import read_sparsity_metadata
        from ..data.calibration import BUILTIN_DATASETS, window_bos_id
        from ..evaluation import evaluate_perplexity, evaluate_task
        from ..evaluation.generation import check_prompts

        if args.prompt:
            check_prompts(args.prompt)  # an empty --prompt is a usage error (ConfigError), found before any loading

        for value in args.dataset:
            if value.startswith("builtin:") and value[8:] not in BUILTIN_DATASETS:
                choices = ", ".join(f"builtin:{n}" for n in BUILTIN_DATASETS)
                raise UsageError(f"--dataset {value!r} is not a bundled dataset; choose one of {choices}.")
        if args.device is not None:
            from ..runtime.devices import check_device

            check_device(args.device, "--device", fix="pass --device cpu, or leave --device out.")
        if args.no_progress:
            disable_progress_bars()
        loading, device = loading_options(args), resolve_device(args)
        model, tokenizer, model_path, pruned = _load(args.model, "--model", args, loading, device)
        results, intervals = {}, {}
        for source in args.dataset:
            status(f"perplexity on {source}")
            result = evaluate_perplexity(
                model,
                tokenizer,
                source,
                window=args.window,
                stride=args.stride,
                limit=args.limit,
                text_column=args.text_column,
                progress=not args.no_progress,
                add_bos=args.add_bos,
                resample_by=args.resample_by,
            )
            if not math.isfinite(result.perplexity):  # NaN or inf weights, or activations that overflow the dtype
                raise RunFailure(
                    f"--model {args.model!r}: the perplexity on {source!r} is {result.perplexity}, so the model's outputs "
                    "are not finite (a NaN or inf weight, or activations overflowing the dtype); check the weights with "
                    "'optimum-cli dpruner inspect', or evaluate in --dtype float32."
                )
            results[source] = result.perplexity
            intervals[source] = {"low": result.low, "high": result.high, "windows": result.windows, "tokens": result.tokens,
                                 "documents": result.documents, "window": result.window, "stride": result.stride}
        tasks = {}
        for task in args.task:
            status(f"task {task}")
            options = {"limit": args.limit} if args.limit is not None else {}
            if task == "billsum" and args.max_new_tokens is not None:
                options["max_new_tokens"] = args.max_new_tokens
            result = evaluate_task(model, tokenizer, task, batch_size=args.batch_size, seed=args.seed,
                                   progress=not args.no_progress, **options)
            tasks[task] = {"items": result.num_items, **result.metrics}
        samples = continue_prompts(args.model, model, tokenizer, args) if args.prompt else []
        if args.reference is not None:
            del model  # one model in memory at a time
            reference = _load(args.reference, "--reference", args, {k: v for k, v in loading.items() if k != "revision"}, device)
            continue_prompts(args.reference, *reference[:2], args, samples)
        metadata = read_sparsity_metadata(model_path) if pruned else None
        window = next(iter(intervals.values())) if intervals else {"window": args.window, "stride": args.stride}
        bos = window_bos_id(tokenizer, args.add_bos) if results else None  # a BOS leaves window - 1 text tokens
        payload = {"model": args.model, "perplexity": results, "perplexity_intervals": intervals, "tasks": tasks,
                   "interval": f"95% percentile bootstrap over {args.resample_by} (perplexity) or items (tasks)",
                   "sparsity": metadata, "window": window["window"], "stride": window["stride"],
                   "bos_token_id": bos, "limit": args.limit, "seed": args.seed, "samples": samples,
                   "reference": args.reference}
        if output is not None:
            _write_json(output, payload)
            status(f"results written to {output}")
        if args.json:
            print(json.dumps(payload, indent=2))
            return 0
        if results:
            rows = [(k, f"{v:.3f}", f"[{intervals[k]['low']:.3f}, {intervals[k]['high']:.3f}]", intervals[k]["windows"],
                     intervals[k]["documents"]) for k, v in results.items()]
            print(format_table(rows, header=("dataset", "perplexity", f"95% interval ({args.resample_by})", "windows", "documents owning one")))
        for task, metrics in tasks.items():
            names = [name for name in metrics if name != "items" and not name.endswith(("_low", "_high"))]
            rows = [(name, f"{metrics[name]:.4f}", f"[{metrics[name + '_low']:.4f}, {metrics[name + '_high']:.4f}]") for name in names]
            rows.append(("items", str(metrics["items"]), ""))
            print(("\n" if results or task != args.task[0] else "") + format_table(rows, header=(task, "value", "95% interval")))
        if samples:
            print(("\n" if results or tasks else "") + format_samples(samples, args.model, args.reference))
        if metadata:
            print(
                f"\nmodel: {metadata.get('method')} {metadata.get('pattern')}, "
                f"sparsity {metadata.get('global_sparsity', 0):.4f} of the target matrices"
            )
        return 0
