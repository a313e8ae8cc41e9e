"""Run by tests/recovery/test_ddp.py under `accelerate launch`: recover a saved pruned tiny model, write the weights.

    accelerate launch --multi_gpu --num_processes 2 tests/recovery/ddp_recover_worker.py PRUNED_DIR CONFIG_JSON OUT_DIR

Writes OUT_DIR/rank{R}.safetensors with every parameter of the recovered model and the logged losses.
"""

import json
import os
import sys

import torch
from safetensors.torch import save_file

from optimum_dpruner import RecoveryConfig, recover
from optimum_dpruner.runtime.distributed import current_process_group



def main() -> None:
    pruned_dir, config_path, out_dir = sys.argv[1:4]
    torch.set_num_threads(1)
    with open(config_path) as f:
        config = RecoveryConfig.from_dict(json.load(f))
    with open(os.path.join(out_dir, "texts.json")) as f:
        general, domain = json.load(f)
    result = recover(pruned_dir, [general], [domain], config, progress=False, device="cpu")
    group = current_process_group()
    tensors = {k: v.contiguous() for k, v in result.model.state_dict().items()}
    save_file(tensors, os.path.join(out_dir, f"rank{group.process_index}.safetensors"),
              metadata={"num_processes": str(result.report.num_processes), "losses": json.dumps(result.report.losses)})


if __name__ == "__main__":
    main()
