"""Capture pass: record what the model passes to each decoder block, for every calibration window.

No model family's code is patched. A forward pre-hook (with kwargs) on every decoder block records what the
model passes to it (hidden states for the first block; attention mask, position embeddings, cache position...
for all of them, since models like Gemma3 pass different masks to different layers), and the hook on the last
block stops the forward pass. `BlockInputs` then holds the hidden states entering the current block (replaced
block after block by `stages.walk`) and each block's other arguments.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from ..configuration import DPrunerConfig
from ..errors import UnsupportedModelError
from ..runtime.devices import check_device
from ..runtime.hooks import HookManager
from ..models.loading import DecoderBlocks
from ..runtime.offload import accelerate_offloaded, module_device, non_block_modules, offload_hook, onloaded, resolve_device

__all__ = ["BlockInputs", "capture_block_inputs", "model_device", "execution_device"]

logger = logging.getLogger(__name__)


class _StopForward(Exception):
    """Raised by the capture hook to end the model's forward pass once every block's inputs are recorded."""


def model_device(model: nn.Module) -> torch.device:
    """Device of the input embeddings (where input ids must go)."""
    return model.get_input_embeddings().weight.device


def _block_output(output: Any) -> torch.Tensor:
    return output[0] if isinstance(output, (tuple, list)) else output


class BlockInputs:
    """Inputs of every decoder block for every calibration sample.

    `hidden[s]` is the hidden state entering the current block for sample `s`, kept on `storage` (CPU when
    activations are offloaded); `calls[b][s]` holds the other positional and keyword arguments the model passed
    to block `b` for sample `s`, on the execution device (tensors shared between blocks are stored once, by
    reference). `weights[s]` is the per-token weight of sample `s` in the statistics (see
    `methods.statistics`); equal weights summing to 1 over all tokens unless the caller sets them.
    """

    def __init__(self, num_blocks: int, device: torch.device, storage: torch.device) -> None:
        self.hidden: list[torch.Tensor] = []
        self.calls: list[list[tuple[tuple, dict]]] = [[] for _ in range(num_blocks)]
        self.weights: list[float] = []
        self.device = device
        self.storage = storage

    def run_block(self, block: nn.Module, index: int, sample: int) -> torch.Tensor:
        """Run `block` (already on the execution device) on sample `sample`; the output goes to `storage`."""
        args, kwargs = self.calls[index][sample]
        output = _block_output(block(self.hidden[sample].to(self.device), *args, **kwargs))
        return output.to(self.storage)


def _same(a: Any, b: Any) -> bool:
    """Structural equality of hook arguments (tensors compared by value)."""
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return (
            isinstance(a, torch.Tensor)
            and isinstance(b, torch.Tensor)
            and a.shape == b.shape
            and a.dtype == b.dtype
            and torch.equal(a, b)
        )
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def execution_device(model: nn.Module, config: DPrunerConfig) -> torch.device:
    """Where the block-by-block stages compute: `config.execution_device`, else the input embeddings' device.

    Raises:
        `ConfigError`: `execution_device` is not a device name, or names an accelerator this machine lacks.
    """
    if config.execution_device is None:
        hook = next((h for m in model.modules() if (h := offload_hook(m)) is not None), None)
        if hook is not None:  # dispatched by accelerate: where its hooks compute
            return resolve_device(hook.execution_device)
        return resolve_device(model_device(model))
    device = check_device(config.execution_device, "execution_device",
                          fix="drop execution_device (compute where the model is) or use 'cpu'.")
    return resolve_device(device)


@torch.no_grad()
def capture_block_inputs(
    model: nn.Module,
    blocks: DecoderBlocks,
    samples: list[torch.Tensor],
    progress: bool = True,
    device: torch.device | None = None,
    storage: torch.device | None = None,
) -> BlockInputs:
    """Record every block's inputs for each sample (see module doc).

    The first sample runs up to the last block, recording what every block receives. The arguments other than
    the hidden states (masks, positions, rotary embeddings) depend on the sequence's shape, not its tokens, so
    the other samples stop at the first block; if that block's arguments differ from the first sample's (e.g.
    another length), the sample runs to the last block too.

    The pass runs on `device` (default: the input embeddings' device): the modules outside the blocks are moved
    there for its duration, and each block only while it runs. Hidden states are kept on `storage` (default:
    `device`).
    """
    device = resolve_device(device or model_device(model))
    inputs = BlockInputs(len(blocks), device, storage or device)
    last = len(blocks) - 1
    stop_at = [last]
    current: dict[int, tuple[tuple, dict]] = {}

    def make_hook(index: int) -> Callable:
        def hook(module: nn.Module, args: tuple, kwargs: dict) -> None:
            kwargs = dict(kwargs)
            if args:
                hidden, rest = args[0], tuple(args[1:])
            elif "hidden_states" in kwargs:
                hidden, rest = kwargs.pop("hidden_states"), ()
            else:
                raise UnsupportedModelError(f"decoder block {index} was called without hidden states")
            if index == 0:
                inputs.hidden.append(hidden.detach().to(inputs.storage))
            kwargs.pop("past_key_values", None)
            kwargs.pop("past_key_value", None)
            kwargs["use_cache"] = False
            current[index] = (rest, kwargs)
            if index == stop_at[0]:
                raise _StopForward

        return hook

    def run(ids: torch.Tensor) -> None:
        current.clear()
        try:
            model(input_ids=ids.to(device), use_cache=False)
        except _StopForward:
            return
        raise UnsupportedModelError("the model's forward pass never reached its last decoder block")

    def onload(module: nn.Module, args: tuple) -> None:
        module.to(device)

    homes = [module_device(block) for block in blocks.blocks]
    with onloaded(non_block_modules(model, blocks.blocks), device), HookManager() as hooks:
        for i, block in enumerate(blocks.blocks):
            # blocks live elsewhere: one at a time (accelerate's own hooks place an offloaded block's weights)
            if homes[i] is not None and not accelerate_offloaded(block) and resolve_device(homes[i]) != device:
                hooks.add_forward_pre_hook(block, onload)
                hooks.add_forward_hook(block, lambda m, args, out, _home=homes[i]: m.to(_home))
            hooks.add_forward_pre_hook(block, make_hook(i), with_kwargs=True)
        try:
            for s, ids in enumerate(tqdm(samples, desc="Capturing block inputs", disable=not progress, leave=False)):
                stop_at[0] = last if s == 0 else 0
                run(ids)
                if s > 0 and not _same(current[0], inputs.calls[0][0]):
                    inputs.hidden.pop()
                    stop_at[0] = last
                    run(ids)
                for index in range(len(blocks)):
                    inputs.calls[index].append(current[index] if index in current else inputs.calls[index][0])
        finally:
            for block, home in zip(blocks.blocks, homes):  # the block the pass stopped in was not moved back
                if home is not None and not accelerate_offloaded(block):
                    block.to(home)
    tokens = sum(h.shape[:-1].numel() for h in inputs.hidden)
    inputs.weights = [1.0 / tokens] * len(inputs.hidden)
    return inputs


