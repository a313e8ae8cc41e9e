"""The block walk: for each decoder block, collect statistics, prune its target linears, propagate.

For each block in turn: forward hooks on its target linears feed one statistic per input group
(`stages.groups`), each group is pruned by the method (`PruningMethod.prune_group`), and the block is run
again with hooks muted to produce the next block's inputs from the *pruned* block. Only one block's statistics
exist at a time. The stages compute on `execution_device`; a model that lives elsewhere (CPU RAM) has one block
at a time moved there (`optimum_dpruner.runtime.offload`), and the activations between blocks can wait in CPU RAM.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn
from tqdm.auto import tqdm

from ..configuration import DPrunerConfig
from ..errors import UnsupportedModelError
from ..runtime.hooks import HookManager
from ..methods.base import LayerResult, PruningMethod
from ..methods.statistics import Hessian
from ..models.loading import find_decoder_blocks, find_target_linears
from ..runtime.offload import onloaded, storage_device
from ..runtime.timers import StageTimer
from .capture import BlockInputs, capture_block_inputs, execution_device
from .groups import InputGroup, SharedStatistics

__all__ = ["prune_blockwise", "iter_target_linears"]


def iter_target_linears(model: nn.Module, config: DPrunerConfig) -> dict[str, nn.Linear]:
    """Every target linear of the model, keyed by full module name, in block order."""
    blocks = find_decoder_blocks(model)
    found: dict[str, nn.Linear] = {}
    for i, block in enumerate(blocks.blocks):
        found.update(find_target_linears(block, f"{blocks.name}.{i}", config.targets, config.ignore))
    if not found:
        from transformers.pytorch_utils import Conv1D

        if any(isinstance(m, Conv1D) for block in blocks.blocks for m in block.modules()):
            raise UnsupportedModelError(
                f"{type(model).__name__} computes its projections with transformers' Conv1D (GPT-2 style, weights stored "
                "transposed), not nn.Linear, and only nn.Linear layers can be pruned; use a model with nn.Linear layers "
                "(Llama, Qwen2, Mistral, Gemma, SmolLM2...)."
            )
        raise UnsupportedModelError(
            f"no target linear matched targets={config.targets!r} ignore={config.ignore!r} in {type(model).__name__}."
        )
    return found


@torch.no_grad()
def _write_weight(module: nn.Linear, weight: torch.Tensor) -> None:
    module.weight.data.copy_(weight.to(device=module.weight.device, dtype=module.weight.dtype))


def _calibrate(
    block: nn.Module, index: int, targets: dict[str, nn.Linear], inputs: BlockInputs, method: PruningMethod,
    config: DPrunerConfig, progress: bool, timer: StageTimer,
) -> list[InputGroup]:
    """Run the block over every window with hooks feeding the statistics; the input groups with their statistics.

    When the method leaves weights as they are, the block's outputs become the next block's inputs here.
    """
    if config.offload_hessians and method.statistic is Hessian:  # kept in CPU RAM between batches
        make = lambda d_in: Hessian(d_in, inputs.device, home=torch.device("cpu"))  # noqa: E731
    else:
        make = lambda d_in: method.statistic(d_in, inputs.device)  # noqa: E731
    shared = SharedStatistics({name: module.weight.shape[1] for name, module in targets.items()}, make, timer)
    keep_outputs = not method.changes_weights  # then the dense outputs are the next block's inputs
    outputs = []
    statistics_before = timer.seconds.get("statistics", 0.0)
    with HookManager() as hooks, timer("forward"):
        for name, module in targets.items():
            hooks.add_forward_hook(module, lambda m, args, out, _n=name: shared.record(_n, args[0]))
        for s in tqdm(range(len(inputs.hidden)), desc=f"block {index}", disable=not progress, leave=False):
            shared.weight = inputs.weights[s]
            output = inputs.run_block(block, index, s)
            shared.end_window()
            if keep_outputs:
                outputs.append(output)
    timer.add("forward", statistics_before - timer.seconds.get("statistics", 0.0))  # forward alone
    if keep_outputs:
        inputs.hidden = outputs
    return shared.groups()


@torch.no_grad()
def _prune_block(
    block: nn.Module,
    index: int,
    prefix: str,
    inputs: BlockInputs | None,
    method: PruningMethod,
    config: DPrunerConfig,
    on_layer: Callable[[str, LayerResult], None] | None,
    restore_weights: bool,
    progress: bool,
    last: bool,
    timer: StageTimer,
) -> None:
    """Calibrate, prune and propagate one block (on the execution device); see `prune_blockwise`."""
    targets = find_target_linears(block, prefix, config.targets, config.ignore)
    if inputs is not None and method.statistic is not None:
        groups = _calibrate(block, index, targets, inputs, method, config, progress, timer)
    else:
        groups = [InputGroup([name], None) for name in targets]
    storage = inputs.storage if inputs is not None else torch.device("cpu")
    originals = {n: m.weight.detach().to(storage, copy=True) for n, m in targets.items()} if restore_weights else {}
    for group in groups:
        results = method.prune_group({name: targets[name].weight.data for name in group.members}, group.statistic, timer)
        group.statistic = None
        for name, result in results.items():
            _write_weight(targets[name], result.weight)
            if on_layer is not None:
                on_layer(name, result)
        del results
    if inputs is not None:
        if method.changes_weights and not last:
            with timer("propagation"):
                inputs.hidden = [inputs.run_block(block, index, s) for s in range(len(inputs.hidden))]
        inputs.calls[index] = []
    for name, weight in originals.items():
        _write_weight(targets[name], weight)


@torch.no_grad()
def prune_blockwise(
    model: nn.Module,
    samples: list[torch.Tensor] | None,
    method: PruningMethod,
    config: DPrunerConfig,
    on_layer: Callable[[str, LayerResult], None] | None = None,
    restore_weights: bool = False,
    progress: bool = True,
    sample_weights: Sequence[float] | None = None,
    timer: StageTimer | None = None,
) -> None:
    """Prune every target linear of `model` in place with `method`, block by block.

    Args:
        model (`nn.Module`): a decoder-only causal LM.
        samples (`list[torch.Tensor]`, *optional*): calibration input ids, each `(1, seq_len)`; unused when the
            method needs no data.
        method (`PruningMethod`): the method (one instance for the whole run).
        config (`DPrunerConfig`): options.
        on_layer (`Callable`, *optional*): called with `(name, LayerResult)` after each matrix is pruned.
        restore_weights (`bool`, *optional*, defaults to `False`): put each block's original weights back after its
            pruned outputs were propagated (D-Pruner's general stage keeps only the saliency).
        progress (`bool`, *optional*, defaults to `True`): show progress bars.
        sample_weights (`Sequence[float]`, *optional*): per-token weight of each sample in the statistics (they
            should sum to 1 over all tokens); defaults to equal weights.
        timer (`StageTimer`, *optional*): receives the seconds of each step (`capture`, `forward`, `statistics`,
            `factorisation`, `mask_selection`, `obs_update`, `propagation`).
    """
    timer = timer or StageTimer()
    blocks = find_decoder_blocks(model)
    device = execution_device(model, config)
    storage = storage_device(config.offload_activations, device)
    inputs = None
    if method.requires_data:
        with timer("capture"):
            inputs = capture_block_inputs(model, blocks, samples, progress, device, storage)
        if sample_weights is not None:
            if len(sample_weights) != len(inputs.hidden):
                raise ValueError(f"got {len(sample_weights)} sample weights for {len(inputs.hidden)} samples")
            inputs.weights = list(sample_weights)
    was_training = model.training
    model.eval()
    try:
        for index, block in enumerate(tqdm(blocks.blocks, desc=f"{method.name}: blocks", disable=not progress)):
            with onloaded(block, device):
                _prune_block(block, index, f"{blocks.name}.{index}", inputs, method, config, on_layer,
                             restore_weights, progress, last=index == len(blocks) - 1, timer=timer)
    finally:
        model.train(was_training)
