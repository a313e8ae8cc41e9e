"""The block-by-block stages: capture each decoder block's inputs, collect statistics per input group, prune,
propagate the pruned outputs (`walk`), with the capture pass in `capture` and the shared statistics in `groups`."""

from .capture import BlockInputs, capture_block_inputs, execution_device, model_device
from .groups import InputGroup, SharedStatistics
from .walk import iter_target_linears, prune_blockwise

__all__ = [
    "BlockInputs",
    "capture_block_inputs",
    "execution_device",
    "model_device",
    "InputGroup",
    "SharedStatistics",
    "iter_target_linears",
    "prune_blockwise",
]
