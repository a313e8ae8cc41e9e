"""The process group a pruning run is part of, from accelerate's `PartialState`, and the collectives it needs.

D-Pruner's domain stage is data parallel in the DDP sense: every process holds the whole model, each step's
batch of `domain_batch_size` sequences is split evenly over the processes, and each weight's gradient is
averaged over them (an all-reduce in the gradient hook, where DDP would all-reduce its buckets) before the
regularised gradient, the Taylor score and the optional SGD step are computed from it. Every process then holds
the same I and takes the same mask; the result equals one process running the same global batches, up to the
rounding of the all-reduce.

Launch with `accelerate launch --multi_gpu --num_processes N script.py` (or `torchrun`); on machines with no
accelerator the processes talk over gloo.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass

import torch

__all__ = ["ProcessGroup", "current_process_group", "main_process_writes"]


@dataclass(frozen=True)
class ProcessGroup:
    """Rank and size of the group this process runs in (`num_processes == 1` when not launched distributed).

    Args:
        process_index (`int`): this process's rank.
        num_processes (`int`): processes in the group.
        device (`torch.device`): the device accelerate assigned to this process.
    """

    process_index: int = 0
    num_processes: int = 1
    device: torch.device | None = None

    @property
    def is_distributed(self) -> bool:
        return self.num_processes > 1

    @property
    def is_main_process(self) -> bool:
        return self.process_index == 0

    def local_slice(self, items: list) -> list:
        """This process's contiguous share of `items` (a global batch whose length divides evenly)."""
        share, rest = divmod(len(items), self.num_processes)
        if rest:
            raise ValueError(f"{len(items)} items cannot be split evenly over {self.num_processes} processes")
        return items[self.process_index * share : (self.process_index + 1) * share]

    def mean(self, tensor: torch.Tensor) -> torch.Tensor:
        """The element-wise mean of `tensor` over the processes (the tensor itself when not distributed)."""
        if not self.is_distributed:
            return tensor
        from accelerate.utils import reduce

        return reduce(tensor, reduction="mean")

    def broadcast_(self, tensor: torch.Tensor) -> torch.Tensor:
        """Overwrite `tensor` in place with the main process's copy (sent through this process's device, so
        that a CPU-held score works with nccl too)."""
        if self.is_distributed:
            buffer = tensor.to(self.device) if self.device is not None else tensor
            torch.distributed.broadcast(buffer, src=0)
            if buffer is not tensor:
                tensor.copy_(buffer)
        return tensor

    def sum_(self, tensor: torch.Tensor) -> torch.Tensor:
        """Overwrite `tensor` in place with its element-wise sum over the processes (through this process's
        device, like `broadcast_`)."""
        if self.is_distributed:
            buffer = tensor.to(self.device) if self.device is not None else tensor
            torch.distributed.all_reduce(buffer)
            if buffer is not tensor:
                tensor.copy_(buffer)
        return tensor

    def barrier(self) -> None:
        if self.is_distributed:
            torch.distributed.barrier()


def _launched_distributed() -> bool:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return True
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def current_process_group() -> ProcessGroup:
    """The group of this process: accelerate's `PartialState` when launched with several processes, else a group
    of one (without touching accelerate's state).

    On a machine without accelerator, `PartialState(cpu=True)` is what makes accelerate form a gloo group (with
    `cpu=False` it falls back to a single process there).
    """
    if not _launched_distributed():
        return ProcessGroup()
    from accelerate import PartialState

    state = PartialState(cpu=not torch.accelerator.is_available())
    return ProcessGroup(state.process_index, state.num_processes, state.device)


@contextlib.contextmanager
def main_process_writes() -> Iterator[bool]:
    """Yield whether this process should write (the main one); on exit, error or not, every process waits for it."""
    group = current_process_group()
    try:
        yield group.is_main_process
    finally:
        group.barrier()
