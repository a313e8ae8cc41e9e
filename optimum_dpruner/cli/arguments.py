"""Flags shared by several commands (model loading, Hub pushes, an input folder) and what they feed."""

from __future__ import annotations

import argparse
import os

from .exits import UsageError

__all__ = [
    "DEFAULT_MODEL",
    "DEFAULT_MODEL_HELP",
    "DTYPE_CHOICES",
    "DATA_FLAG_NAMES",
    "add_model_and_data_arguments",
    "add_model_loading_arguments",
    "add_hub_arguments",
    "loading_options",
    "model_source",
    "push_folder",
    "require_folder",
    "resolve_device",
]

#: The flags of the library's data and output arguments, for messages (`DPrunerCLICommand.FLAG_NAMES`).
DATA_FLAG_NAMES = {"general_ds": "--general-dataset", "domain_ds": "--domain-dataset", "save_directory": "--output"}

#: The `--model` value (and the default when `-m` is left out) that names the embedded SmolLM2-135M-Instruct.
DEFAULT_MODEL = "default"
DEFAULT_MODEL_HELP = (
    " Default: 'default', the embedded SmolLM2-135M-Instruct (nothing downloaded; a folder called default is ./default)."
)

#: Values of `--dtype`; `models.loading.resolve_dtype` accepts these (and aliases).
DTYPE_CHOICES = ("auto", "float32", "float16", "bfloat16")
#: the `push_to_hub` options that `add_hub_arguments` adds, by their argparse `dest`
_HUB_OPTIONS = {"private": "private", "token": "token", "push_revision": "revision", "create_pr": "create_pr",
                "commit_message": "commit_message"}


def add_model_loading_arguments(parser: argparse.ArgumentParser, hub: bool = True) -> None:
    """`--device` and `--dtype`, shared by the commands that load a model; with `hub`, also transformers' loading
    options `--revision`, `--trust-remote-code` and `--cache-dir` (see `loading_options`)."""
    group = parser.add_argument_group("model loading")
    group.add_argument(
        "--device", default=None,
        help="Device to run on, e.g. 'cpu', 'cuda', 'cuda:1' (default: the accelerator when there is one, else cpu).",
    )
    group.add_argument(
        "--dtype", default=None, choices=DTYPE_CHOICES, help="Dtype to load the weights in (default: the checkpoint's)."
    )
    if hub:
        group.add_argument("--revision", default=None, metavar="REV",
                           help="Revision of the model to load: a branch, tag or commit id of a Hub model (default: main).")
        group.add_argument("--trust-remote-code", action="store_true",
                           help="Let a Hub model run its own modelling code (transformers' trust_remote_code).")
        group.add_argument("--cache-dir", default=None, metavar="DIR",
                           help="Where Hub downloads are cached (default: the huggingface_hub cache).")


def loading_options(args: argparse.Namespace) -> dict:
    """The `from_pretrained` options of `add_model_loading_arguments(hub=True)` that were given."""
    options = {}
    if getattr(args, "revision", None) is not None:
        options["revision"] = args.revision
    if getattr(args, "cache_dir", None) is not None:
        options["cache_dir"] = os.path.expanduser(args.cache_dir)
    if getattr(args, "trust_remote_code", False):
        options["trust_remote_code"] = True
    return options


def resolve_device(args: argparse.Namespace, execution_device: str | None = None) -> str | None:
    """`--device`, or when it is left out the accelerator of this machine (`None` for the CPU).

    Left out, it stays `None` (the model stays where it is loaded) when the run computes block by block on
    `execution_device`, or runs on several processes (each gets its device from accelerate)."""
    if args.device is not None:
        return args.device
    if execution_device is not None:
        return None
    from ..runtime.devices import default_device
    from ..runtime.distributed import current_process_group

    if current_process_group().is_distributed:
        return None
    device = default_device()
    return None if device == "cpu" else device


def model_source(model: str | None) -> str | None:
    """The path or Hub id of `--model`; `None` (the library's embedded default model) for `default`."""
    return None if model in (None, DEFAULT_MODEL) else model


def add_hub_arguments(parser: argparse.ArgumentParser, title: str = "Hugging Face Hub") -> None:
    """Options of a push to the Hub, shared by `prune --push-to-hub` and `push`."""
    group = parser.add_argument_group(title)
    group.add_argument("--private", action="store_true", default=None, help="Create the repository as private.")
    group.add_argument("--token", default=None, help="Hub token (default: HF_TOKEN or the token saved by `hf auth login`).")
    group.add_argument("--push-revision", default=None, metavar="BRANCH", help="Branch to push to (default: main).")
    group.add_argument("--create-pr", action="store_true", help="Open a pull request instead of committing to the branch.")
    group.add_argument("--commit-message", default=None, help="Commit message (default: one naming the method and sparsity).")


def push_folder(args: argparse.Namespace, folder: str, repo_id: str) -> str:
    """Push `folder` to `repo_id` with the options of `add_hub_arguments`; returns the commit URL."""
    from ..checkpoint.hub import push_to_hub

    return push_to_hub(folder, repo_id, **{option: getattr(args, dest) for dest, option in _HUB_OPTIONS.items()})


def require_folder(flag: str, path: str, must_contain: str | None = "config.json") -> str:
    """The absolute path of `path`; `UsageError` unless it is a folder (holding `must_contain`)."""
    full = os.path.abspath(os.path.expanduser(path))
    if not os.path.isdir(full):
        raise UsageError(f"{flag} {path!r} is not a folder; pass the folder written by 'optimum-cli dpruner prune'.")
    if must_contain and not os.path.isfile(os.path.join(full, must_contain)):
        raise UsageError(f"{flag} {path!r} holds no {must_contain}; pass the folder written by 'optimum-cli dpruner prune'.")
    return full


def add_model_and_data_arguments(
    parser: argparse.ArgumentParser, model: str, general: str, domain: str, default_model: bool = False
):
    """The "model and data" group of a command that reads a model and general + domain text (`-m`,
    `--general-dataset`, `--domain-dataset`, each with its help); returns the group for the command's own flags.
    With `default_model`, `-m` may be left out or be `default` (the embedded model, `DEFAULT_MODEL`)."""
    group = parser.add_argument_group("model and data")
    if default_model:
        group.add_argument("-m", "--model", default=DEFAULT_MODEL, help=model + DEFAULT_MODEL_HELP)
    else:
        group.add_argument("-m", "--model", required=True, help=model)
    group.add_argument("--general-dataset", default=None, metavar="DATASET", help=general)
    group.add_argument("--domain-dataset", default=None, metavar="DATASET", help=domain)
    return group
