"""Two processes (accelerate launch, gloo on CPU) give the weights of one process over the same global batches."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import torch
from safetensors import safe_open

from optimum_dpruner import RecoveryConfig, recover

from .conftest import GENERAL, TEXT

WORKER = os.path.join(os.path.dirname(__file__), "ddp_recover_worker.py")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_give_the_single_process_weights(prune_tiny, tmp_path):
    pruned_dir = prune_tiny().save_pretrained(tmp_path / "pruned")
    # 3 steps of a global batch of 2 windows: one window per process per step, AdamW, clipping on
    config = RecoveryConfig(mode="full", max_steps=3, seq_len=32, batch_size=2, warmup_steps=1, logging_steps=1, learning_rate=1e-2,
                            weight_decay=0.01)
    (tmp_path / "config.json").write_text(config.to_json_string())
    (tmp_path / "texts.json").write_text(json.dumps([GENERAL, TEXT]))
    single = recover(pruned_dir, [GENERAL], [TEXT], config, progress=False, device="cpu")

    accelerate = os.path.join(os.path.dirname(sys.executable), "accelerate")
    cmd = [accelerate, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
           "--dynamo_backend", "no", "--main_process_port", str(_free_port()), WORKER, pruned_dir,
           str(tmp_path / "config.json"), str(tmp_path)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    expected = single.model.state_dict()
    for rank in range(2):
        with safe_open(str(tmp_path / f"rank{rank}.safetensors"), "pt") as f:
            meta = f.metadata()
            assert meta["num_processes"] == "2"
            assert meta["unmasked_gradients"] == "0"  # the mask holds after the all-reduce, where the optimizer reads
            for key in f.keys():
                got = f.get_tensor(key)
                torch.testing.assert_close(got, expected[key], rtol=1e-4, atol=1e-5, msg=f"rank {rank} {key}")
                if key.endswith("proj.weight"):
                    assert torch.equal(got == 0, expected[key] == 0), key  # the same zeros, exactly
        losses = [loss for _, loss in json.loads(meta["losses"])]
        torch.testing.assert_close(torch.tensor(losses), torch.tensor([l for _, l in single.report.losses]), rtol=1e-4, atol=0)
