"""D-Pruner's domain stage on two processes (accelerate launch, gloo on CPU) against one process on the same data."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest
import torch
from safetensors import safe_open

from optimum_dpruner import DPruner, DPrunerConfig
from optimum_dpruner.runtime.distributed import ProcessGroup, current_process_group
from optimum_dpruner.errors import ConfigError
from optimum_dpruner.stages.domain_gradients import collect_dual_importance
from optimum_dpruner.stages import iter_target_linears

WORKER = os.path.join(os.path.dirname(__file__), "ddp_worker.py")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(model_dir: str, config_path: str, out_dir: str, num_processes: int) -> None:
    accelerate = os.path.join(os.path.dirname(sys.executable), "accelerate")
    cmd = [
        accelerate, "launch", "--multi_gpu", "--num_processes", str(num_processes), "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(_free_port()),
        WORKER, model_dir, config_path, out_dir,
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


def _load(path: str) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    with safe_open(path, "pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, f.metadata()


@pytest.mark.parametrize(
    "learning_rate, parallelism",
    [(0.0, "ddp"), (0.01, "ddp"), (0.0, "fsdp"), (0.01, "fsdp")],
    ids=["ddp-scores-only", "ddp-sgd-clipped", "fsdp-scores-only", "fsdp-sgd-clipped"],
)
def test_two_processes_give_the_single_process_mask(tmp_path, make_tiny, tokenizer, learning_rate, parallelism):
    """DDP: each process holds the whole model; FSDP: each holds half of every matrix (rows), sharded by FSDP2."""
    model_dir = str(tmp_path / "model")
    make_tiny("llama").save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    # 4 domain sequences in 2 steps of 2: each process takes one sequence per step
    config = DPrunerConfig(num_samples=2, domain_num_samples=4, domain_batch_size=2, seq_len=32, block_size=32,
                           learning_rate=learning_rate, gradient_checkpointing=parallelism == "fsdp",
                           domain_parallelism=parallelism)
    config_path = str(tmp_path / "config.json")  # every field: domain_parallelism is run-time, not in the saved recipe
    with open(config_path, "w", encoding="utf-8") as f:
        json.dump(config.to_dict(), f)

    single = DPruner.from_pretrained(model_dir, config=config).prune("builtin:general", "builtin:medical", progress=False)
    targets = iter_target_linears(single.model, config)
    _launch(model_dir, config_path, str(tmp_path), 2)

    for rank in range(2):
        tensors, meta = _load(str(tmp_path / f"rank{rank}.safetensors"))
        assert meta["num_processes"] == "2" and meta["parallelism"] == parallelism
        for name, module in targets.items():
            assert torch.equal(tensors[f"mask.{name}"].bool(), module.weight != 0), (rank, name)
            # the two-process gradient is a sum of halves, not one batch's mean: after SGD steps rounding differs,
            # so entries near zero are compared at the tensor's scale rather than their own
            reference = single.importance["I"][name]
            torch.testing.assert_close(tensors[f"I.{name}"], reference, rtol=1e-4,
                                       atol=1e-5 * reference.abs().max().item())
        # the logged loss is the global batch's: the mean of the two processes' halves
        torch.testing.assert_close(torch.tensor(json.loads(meta["losses"])), torch.tensor(single.report.extra["domain_losses"]),
                                   rtol=1e-5, atol=0)


def test_a_batch_that_does_not_split_over_the_processes_is_refused(tiny_llama):
    config = DPrunerConfig(domain_num_samples=4, domain_batch_size=3, seq_len=16)
    targets = iter_target_linears(tiny_llama, config)
    general = {n: torch.ones_like(m.weight) for n, m in targets.items()}
    samples = [torch.randint(0, 100, (1, 16)) for _ in range(4)]
    with pytest.raises(ConfigError, match="domain_batch_size=3 cannot be split over 2 processes"):
        collect_dual_importance(tiny_llama, samples, targets, general, config, False, ProcessGroup(0, 2))
    config = DPrunerConfig(domain_num_samples=5, domain_batch_size=2, seq_len=16)
    with pytest.raises(ConfigError, match="set domain_num_samples to a multiple of 2"):
        collect_dual_importance(tiny_llama, samples + samples[:1], targets, general, config, False, ProcessGroup(0, 2))


def test_a_plain_process_is_a_group_of_one():
    group = current_process_group()
    assert (group.num_processes, group.process_index, group.is_main_process) == (1, 0, True)
    assert group.local_slice([1, 2, 3]) == [1, 2, 3]
    assert ProcessGroup(1, 2).local_slice([1, 2, 3, 4]) == [3, 4]
