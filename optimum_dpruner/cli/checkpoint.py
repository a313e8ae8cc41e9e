"""`optimum-cli dpruner inspect` and `push`: commands on a folder written by `prune`."""

from __future__ import annotations

import argparse
import json
import os

from ..configuration import CONFIG_NAME
from .base import (
    DPrunerCLICommand,
    RunFailure,
    UsageError,
    add_hub_arguments,
    format_pairs,
    one_line,
    push_folder,
    require_folder,
    status,
)

__all__ = ["InspectCommand", "PushCommand"]


def _read_json(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


class InspectCommand(DPrunerCLICommand):
    DESCRIPTION = (
        "Show what a pruned checkpoint holds (method, base model, calibration, library versions), count the zeros\n"
        "of every pruned matrix, and check them against the sparsity metadata in config.json.\n"
        "Exit code 1 when the weights and the metadata disagree."
    )
    EXAMPLES = """
  optimum-cli dpruner inspect smollm2-medical-50
"""

    @staticmethod
    def parse_args(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("folder", metavar="DIR", help="Folder written by 'optimum-cli dpruner prune'.")
        DPrunerCLICommand.add_common_arguments(parser)

    def execute(self) -> int:
        folder = require_folder("DIR", self.args.folder)
        side_car = _read_json(os.path.join(folder, CONFIG_NAME))
        metadata = _read_json(os.path.join(folder, "config.json")).get("dpruner_sparsity") or {}
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
        from ..verification import verify_sparsity

        status("counting zeros")
        check = verify_sparsity(folder)
        print("\n" + check.table())
        if not check.ok:
            raise RunFailure(
                f"DIR {self.args.folder!r} fails the metadata check ({len(check.problems)} problem(s): "
                f"{one_line(check.problems[0]) if check.problems else 'see above'}); prune the model again."
            )
        return 0


class PushCommand(DPrunerCLICommand):
    DESCRIPTION = (
        "Upload a folder written by 'optimum-cli dpruner prune' to a Hub model repository, creating it if needed,\n"
        "with a model card that states the method, sparsity and calibration. Honours HF_TOKEN and HF_ENDPOINT."
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
        if self.args.repo_id.count("/") > 1 or not self.args.repo_id.strip("/"):
            raise UsageError(f"REPO {self.args.repo_id!r} is not a repo id; pass 'name' or 'owner/name'.")
        status(f"pushing {folder} to {self.args.repo_id}")
        url = push_folder(self.args, folder, self.args.repo_id)
        print(format_pairs([("folder", folder), ("repo", self.args.repo_id), ("commit", url)]))
        return 0

