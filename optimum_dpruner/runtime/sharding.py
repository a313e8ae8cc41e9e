"""A fully sharded (FSDP2) replica of the model for D-Pruner's domain stage, when the model fits no single device.

With `domain_parallelism="fsdp"` and several processes, the gradient pass does not move the model to the
execution device. Each process builds a replica whose parameters start on the `meta` device (no memory), shards
it with `torch.distributed.fsdp.fully_shard` (one unit per decoder block, plus the root) over all processes, and
fills only its own shard of every parameter from the model, which stays where it was loaded (CPU RAM). A device
then holds 1/N of the weights plus one block gathered at a time.

FSDP2 averages each gradient over the processes (reduce-scatter) and then calls the parameter's
post-accumulate-grad hooks with its shard: the hook sees the rows `shard_rows` names, of the averaged gradient
and of the weight. Afterwards, weights the stage changed (the optional SGD step) are gathered back, one matrix at
a time, into the model.
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Iterator

import torch
from torch import nn

from .distributed import ProcessGroup
from ..models.loading import find_decoder_blocks

__all__ = ["sharded_replica", "shard_rows", "local_tensor"]


def shard_rows(num_rows: int, group: ProcessGroup) -> slice:
    """The rows of a `num_rows`-row parameter that `fully_shard` gives this process (`torch.chunk` on dim 0)."""
    chunk = math.ceil(num_rows / group.num_processes)
    start = min(group.process_index * chunk, num_rows)
    return slice(start, min(start + chunk, num_rows))


def local_tensor(tensor: torch.Tensor) -> torch.Tensor:
    """This process's shard of a sharded (DTensor) parameter or gradient; a plain tensor is returned as is."""
    to_local = getattr(tensor, "to_local", None)
    return to_local() if to_local is not None else tensor


def _meta_copy(model: nn.Module) -> nn.Module:
    """A deep copy of `model` whose parameters are empty `meta` tensors (shared parameters stay shared; buffers,
    configs and module classes are copied as they are)."""
    memo = {id(p): nn.Parameter(torch.empty_like(p, device="meta"), requires_grad=p.requires_grad) for p in model.parameters()}
    return copy.deepcopy(model, memo)


@contextlib.contextmanager
def sharded_replica(
    model: nn.Module, names: list[str], group: ProcessGroup, device: torch.device, write_back: bool
) -> Iterator[nn.Module]:
    """Inside the block, an FSDP2-sharded replica of `model` on `device` (see the module doc).

    Args:
        model (`nn.Module`): the model; its parameters are read, never moved.
        names (`list[str]`): the module names of the target linears (the replica has the same names).
        group (`ProcessGroup`): the processes to shard over (all of the launched group).
        device (`torch.device`): where each process's shard lives and computes.
        write_back (`bool`): on exit, copy the targets' weights from the replica into `model` (every process
            gathers each matrix; needed when the stage updates weights).
    """
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    mesh = init_device_mesh(device.type, (group.num_processes,))
    replica = _meta_copy(model)
    for block in find_decoder_blocks(replica).blocks:
        fully_shard(block, mesh=mesh)
    fully_shard(replica, mesh=mesh)
    replica.to_empty(device=device)
    sources = dict(model.named_parameters())
    with torch.no_grad():
        for name, param in replica.named_parameters():
            source = sources[name]
            local_tensor(param).copy_(source[shard_rows(source.shape[0], group)] if source.dim() else source)
        buffers = dict(model.named_buffers())
        for name, buffer in replica.named_buffers():  # rotary tables and the like: not sharded
            buffer.copy_(buffers[name])
    try:
        yield replica
        if write_back:
            modules = dict(replica.named_modules())
            with torch.no_grad():
                for name in names:
                    full = modules[name].weight.full_tensor()  # a collective: same order on every process
                    sources[f"{name}.weight"].copy_(full)
    finally:
        del replica
