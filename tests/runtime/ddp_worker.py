"""Run by tests/runtime/test_distributed.py under `accelerate launch`: D-Pruner on a saved tiny model, one output per rank.

    accelerate launch --multi_gpu --num_processes 2 tests/runtime/ddp_worker.py MODEL_DIR CONFIG_JSON OUT_DIR

Writes OUT_DIR/rank{R}.safetensors with the mask (`mask.<name>`, 1 = kept) and I (`I.<name>`) of every target,
and the report's world size, so the test can compare every process with a single-process run.
"""

import json
import os
import sys

import torch
from safetensors.torch import save_file

from optimum_dpruner import DPruner, DPrunerConfig
from optimum_dpruner.runtime.distributed import current_process_group
from optimum_dpruner.stages import iter_target_linears


def main() -> None:
    model_dir, config_path, out_dir = sys.argv[1:4]
    torch.set_num_threads(1)
    config = DPrunerConfig.from_pretrained(config_path)
    pruner = DPruner.from_pretrained(model_dir, config=config, dtype="float32")
    result = pruner.prune("builtin:general", "builtin:medical", progress=False)
    group = current_process_group()
    tensors = {}
    for name, module in iter_target_linears(result.model, config).items():
        tensors[f"mask.{name}"] = (module.weight != 0).to(torch.uint8).contiguous()
        tensors[f"I.{name}"] = result.importance["I"][name].float().contiguous()
    save_file(tensors, os.path.join(out_dir, f"rank{group.process_index}.safetensors"),
              metadata={"num_processes": str(group.num_processes),
                        "parallelism": result.report.extra["domain_parallelism"], "losses": json.dumps(result.report.extra["domain_losses"])})


if __name__ == "__main__":
    main()
