"""Flags shared by several commands (model loading, Hub pushes, an input folder) and what they feed."""

from __future__ import annotations

import argparse
import os

from .exits import UsageError

__all__ = [
    "DTYPE_CHOICES",
    "DATA_FLAG_NAMES",
    "add_model_and_data_arguments",
    "add_model_loading_arguments",
    "add_hub_arguments",
    "push_folder",
    "require_folder",
]

#: The flags of the library's data and output arguments, for messages (`DPrunerCLICommand.FLAG_NAMES`).
DATA_FLAG_NAMES = {"general_ds": "--general-dataset", "domain_ds": "--domain-dataset", "save_directory": "--output"}

#: Values of `--dtype`; `models.loading.resolve_dtype` accepts these (and aliases).
DTYPE_CHOICES = ("auto", "float32", "float16", "bfloat16")
#: the `push_to_hub` options that `add_hub_arguments` adds, by their argparse `dest`
_HUB_OPTIONS = ("private", "token", "revision", "create_pr", "commit_message")


def add_model_loading_arguments(parser: argparse.ArgumentParser) -> None:
    """`--device` and `--dtype`, shared by the commands that load a model."""
    group = parser.add_argument_group("model loading")
    group.add_argument("--device", default=None, help="Device to run on, e.g. 'cpu', 'cuda', 'cuda:1' (default: cpu).")
    group.add_argument(
        "--dtype", default=None, choices=DTYPE_CHOICES, help="Dtype to load the weights in (default: the checkpoint's)."
    )


def add_hub_arguments(parser: argparse.ArgumentParser, title: str = "Hugging Face Hub") -> None:
    """Options of a push to the Hub, shared by `prune --push-to-hub` and `push`."""
    group = parser.add_argument_group(title)
    group.add_argument("--private", action="store_true", default=None, help="Create the repository as private.")
    group.add_argument("--token", default=None, help="Hub token (default: HF_TOKEN or the token saved by `hf auth login`).")
    group.add_argument("--revision", default=None, help="Branch to push to (default: main).")
    group.add_argument("--create-pr", action="store_true", help="Open a pull request instead of committing to the branch.")
    group.add_argument("--commit-message", default=None, help="Commit message (default: one naming the method and sparsity).")


def push_folder(args: argparse.Namespace, folder: str, repo_id: str) -> str:
    """Push `folder` to `repo_id` with the options of `add_hub_arguments`; returns the commit URL."""
    from ..checkpoint.hub import push_to_hub

    return push_to_hub(folder, repo_id, **{name: getattr(args, name) for name in _HUB_OPTIONS})


def require_folder(flag: str, path: str, must_contain: str | None = "config.json") -> str:
    """The absolute path of `path`; `UsageError` unless it is a folder (holding `must_contain`)."""
    full = os.path.abspath(os.path.expanduser(path))
    if not os.path.isdir(full):
        raise UsageError(f"{flag} {path!r} is not a folder; pass the folder written by 'optimum-cli dpruner prune'.")
    if must_contain and not os.path.isfile(os.path.join(full, must_contain)):
        raise UsageError(f"{flag} {path!r} holds no {must_contain}; pass the folder written by 'optimum-cli dpruner prune'.")
    return full


def add_model_and_data_arguments(parser: argparse.ArgumentParser, model: str, general: str, domain: str):
    """The "model and data" group of a command that reads a model and general + domain text (`-m`,
    `--general-dataset`, `--domain-dataset`, each with its help); returns the group for the command's own flags."""
    group = parser.add_argument_group("model and data")
    group.add_argument("-m", "--model", required=True, help=model)
    group.add_argument("--general-dataset", default=None, metavar="DATASET", help=general)
    group.add_argument("--domain-dataset", default=None, metavar="DATASET", help=domain)
    return group
