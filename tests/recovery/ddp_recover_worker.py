"""Run by tests/recovery/test_ddp.py under `accelerate launch`: recover a saved pruned tiny model, write the weights.

    accelerate launch --multi_gpu --num_processes 2 tests/recovery/ddp_recover_worker.py PRUNED_DIR CONFIG_JSON OUT_DIR

Writes OUT_DIR/rank{R}.safetensors with every parameter of the recovered model, the logged losses and how many
pruned positions held a non-zero gradient when the optimizer stepped (after DDP's all-reduce).
"""

import json
import os
import sys

import torch
from safetensors.torch import save_file

from optimum_dpruner import RecoveryConfig, recover
from optimum_dpruner.recovery.masking import capture_masks, target_names
from optimum_dpruner.runtime.distributed import current_process_group
from transformers import TrainerCallback


class UnmaskedGradients(TrainerCallback):
    """Counts the pruned positions whose all-reduced gradient is non-zero when the optimizer steps."""

    def __init__(self) -> None:
        self.masks, self.count = {}, 0

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self.masks = capture_masks(model, target_names(model))
        assert sum(int(m.sum()) for m in self.masks.values()) > 0

    def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
        grads = {n: model.get_submodule(n).weight.grad for n in self.masks}
        self.count += sum(int(g[self.masks[n]].ne(0).sum()) for n, g in grads.items() if g is not None)


def main() -> None:
    pruned_dir, config_path, out_dir = sys.argv[1:4]
    torch.set_num_threads(1)
    with open(config_path) as f:
        config = RecoveryConfig.from_dict(json.load(f))
    with open(os.path.join(out_dir, "texts.json")) as f:
        general, domain = json.load(f)
    unmasked = UnmaskedGradients()
    result = recover(pruned_dir, [general], [domain], config, progress=False, device="cpu", callbacks=[unmasked])
    group = current_process_group()
    tensors = {k: v.contiguous() for k, v in result.model.state_dict().items()}
    save_file(tensors, os.path.join(out_dir, f"rank{group.process_index}.safetensors"),
              metadata={"num_processes": str(result.report.num_processes), "losses": json.dumps(result.report.losses),
                        "unmasked_gradients": str(unmasked.count)})


if __name__ == "__main__":
    main()
