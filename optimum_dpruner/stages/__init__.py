"""How a run walks the model: capture each decoder block's inputs (`capture`), the block walk that calibrates,
prunes and propagates (`walk`), the statistics shared by linears that read one input (`groups`), D-Pruner's
model-wide stages (`dual_importance`, `domain_gradients`), and the checks before and after a run (`checks`)."""

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
