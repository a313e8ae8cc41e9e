"""`optimum-cli dpruner inspect` and `push`: commands on a folder written by `prune`."""

from __future__ import annotations

import argparse
import os

from ..configuration import CONFIG_NAME
from ..models.hub_ids import is_hub_id, is_repo_id
from ..tables import format_pairs
from .arguments import add_hub_arguments, push_folder, require_folder
from .base import DPrunerCLICommand
from .exits import RunFailure, UsageError, one_line
from .output import status

__all__ = ["InspectCommand", "PushCommand"]


def _read_checkpoint(folder: str) -> tuple[dict, dict]:
    """`(dpruner_config.json, config.json["dpruner_sparsity"])` of a saved folder; `{}` for a missing side car.

    Raises:
        `CheckpointError`: either file is present but not a valid JSON object (the message names it).
    """
    from ..checkpoint.metadata import SPARSITY_KEY, read_json_file

    side_car_path = os.path.join(folder, CONFIG_NAME)
    side_car = read_json_file(side_car_path) if os.path.exists(side_car_path) else {}
    metadata = read_json_file(os.path.join(folder, "config.json")).get(SPARSITY_KEY) or {}
    return side_car, metadata


def _check_sparsity(folder: str, argument: str, show: bool = False):
    """Count the zeros of `folder` against its metadata; `RunFailure` when they disagree."""
    from ..checkpoint.verification import verify_sparsity

    status("counting zeros")
    check = verify_sparsity(folder)
    if show:
        print("\n" + check.table())
    if not check.ok:
        raise RunFailure(
            f"DIR {argument!r} fails the metadata check ({len(check.problems)} problem(s): "
            f"{one_line(check.problems[0]) if check.problems else 'see above'}); prune the model again."
        )
    return check


#: the files `inspect` reads of a Hub repository (no optimizer states, no other formats)
_INSPECT_FILES = ["*.json", "*.safetensors", "README.md"]


def _download_checkpoint(repo_id: str, args: argparse.Namespace) -> str:
    """A local snapshot of the Hub repository `repo_id` (its JSON and safetensors files); `RunFailure` if it cannot
    be downloaded (offline and not cached, unknown, private)."""
    from huggingface_hub import snapshot_download

    from ..errors import describe_error

    status(f"downloading {repo_id}" + (f" at {args.revision}" if args.revision else ""))
    try:
        return snapshot_download(repo_id, revision=args.revision, cache_dir=args.cache_dir, token=args.token,
                                 allow_patterns=_INSPECT_FILES)
    except Exception as e:  # noqa: BLE001 - offline (LocalEntryNotFoundError), unknown repo, no access...
        raise RunFailure(
            f"DIR {repo_id!r} is not a local folder and could not be downloaded from the Hub "
            f"({one_line(describe_error(e).split('. ')[0])}); check the path, or the Hub id and your connection."
        ) from None


class InspectCommand(DPrunerCLICommand):
    DESCRIPTION = (
        "Show what a pruned checkpoint holds (method, base model, calibration, library versions), count the zeros\n"
        "of every pruned matrix, and check them against the sparsity metadata in config.json. DIR is a folder, or a\n"
        "Hub model id (its JSON and safetensors files are downloaded to the Hub cache).\n"
        "Exit code 1 when the weights and the metadata disagree."
    )
    EXAMPLES = """
  optimum-cli dpruner inspect smollm2-medical-50
  optimum-cli dpruner inspect me/smollm2-medical-50 --revision main
"""

    @staticmethod
    def parse_args(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("folder", metavar="DIR", help="Folder written by 'optimum-cli dpruner prune', or a Hub model id.")
        hub = parser.add_argument_group("Hub (when DIR is a Hub id)")
        hub.add_argument("--revision", default=None, metavar="REV", help="Branch, tag or commit id (default: main).")
        hub.add_argument("--cache-dir", default=None, metavar="DIR", help="Hub cache (default: huggingface_hub's).")
        hub.add_argument("--token", default=None, help="Hub token (default: HF_TOKEN or the token saved by `hf auth login`).")
        DPrunerCLICommand.add_common_arguments(parser)

    def execute(self) -> int:
        given = self.args.folder
        if not os.path.exists(os.path.expanduser(given)) and is_hub_id(given):
            folder = require_folder("DIR", _download_checkpoint(given, self.args))
        else:
            folder = require_folder("DIR", given)
        side_car, metadata = _read_checkpoint(folder)
        config = side_car.get("config", {})
        versions = side_car.get("library_versions", {})
        calibration = side_car.get("calibration", {})
        rows = [
            ("folder", folder),
            ("base model", side_car.get("base_model") or "-"),
            ("method", metadata.get("method", config.get("method", "-"))),
            ("pattern", metadata.get("pattern", config.get("pattern", "-"))),
            ("target sparsity", metadata.get("target_sparsity", config.get("sparsity", "-"))),
            ("storage", metadata.get("format", "dense")),
            ("calibration", ", ".join(f"{k}: {v.get('num_samples')}x{v.get('seq_len')}" for k, v in calibration.items()) or "-"),
            ("versions", ", ".join(f"{k} {v}" for k, v in sorted(versions.items())) or "-"),
        ]
        print(format_pairs(rows))
        _check_sparsity(folder, self.args.folder, show=True)
        return 0


class PushCommand(DPrunerCLICommand):
    DESCRIPTION = (
        "Upload a folder written by 'optimum-cli dpruner prune' to a Hub model repository, creating it if needed,\n"
        "with a model card that states the method, sparsity and calibration. Honours HF_TOKEN and HF_ENDPOINT.\n"
        "The folder is checked first as 'inspect' does: a corrupt file or weights that miss the recorded or requested\n"
        "sparsity stop the push (exit code 1)."
    )
    EXAMPLES = """
  optimum-cli dpruner push smollm2-medical-50 me/smollm2-medical-50 --private
  optimum-cli dpruner push smollm2-medical-50 org/smollm2-medical-50 --create-pr --commit-message "60% variant"
"""

    @staticmethod
    def parse_args(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("folder", metavar="DIR", help="Folder written by 'optimum-cli dpruner prune'.")
        parser.add_argument("repo_id", metavar="REPO", help="Hub repository id, 'name' or 'owner/name'.")
        add_hub_arguments(parser, title="Hub options")
        DPrunerCLICommand.add_common_arguments(parser)

    def execute(self) -> int:
        folder = require_folder("DIR", self.args.folder)
        if not is_repo_id(self.args.repo_id):
            raise UsageError(f"REPO {self.args.repo_id!r} is not a repo id; pass 'name' or 'owner/name'.")
        _read_checkpoint(folder)
        _check_sparsity(folder, self.args.folder)
        status(f"pushing {folder} to {self.args.repo_id}")
        url = push_folder(self.args, folder, self.args.repo_id)
        print(format_pairs([("folder", folder), ("repo", self.args.repo_id), ("commit", url)]))
        return 0

