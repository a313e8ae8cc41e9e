"""What an estimate reads off a model: weight bytes, widths and each decoder block's target shapes, and the matmul
flops and activation bytes of a forward pass that follow from them. Only shapes and dtypes are read, so a skeleton
on the `meta` device serves as well as the loaded model."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from ..configuration import DPrunerConfig
from ..models.loading import find_decoder_blocks, find_target_linears

__all__ = ["ModelShapes", "model_shapes", "FP32", "OPS_PER_BLOCK"]

FP32 = 4
OPS_PER_BLOCK = 40  # kernels in one decoder block's forward (norms, projections, rotary, attention, MLP)


@dataclass(frozen=True)
class ModelShapes:
    """What the estimate needs to know about a model.

    Args:
        weight_bytes (`int`): every parameter (a tied one once).
        dtype_bytes (`int`): bytes per element of the hidden states (the embeddings' dtype).
        hidden (`int`): the hidden size.
        vocab (`int`): rows of the LM head.
        heads (`int`): attention heads.
        blocks (`list[list[tuple[int, int]]]`): `(d_out, d_in)` of each target linear, per decoder block.
        block_bytes (`list[int]`): parameter bytes of each decoder block.
        params (`int`): parameter count.
    """

    weight_bytes: int
    dtype_bytes: int
    hidden: int
    vocab: int
    heads: int
    blocks: list[list[tuple[int, int]]]
    block_bytes: list[int]
    params: int

    @property
    def targets(self) -> list[tuple[int, int]]:
        return [t for block in self.blocks for t in block]

    def forward_flops(self, tokens: int, seq_len: int, head: bool) -> float:
        """Matmul flops of one forward pass of the blocks (and the LM head if `head`) over `tokens` tokens."""
        linear = sum(d_out * d_in for d_out, d_in in self.targets) + (self.vocab * self.hidden if head else 0)
        attention = len(self.blocks) * 2 * seq_len * self.hidden  # scores and weighted sum, per token
        return 2 * tokens * (linear + attention)

    def block_activation_bytes(self, tokens: int, seq_len: int) -> int:
        """What one block's forward keeps alive for `tokens` tokens (with autograd: saved for backward)."""
        widest = max((d_out for block in self.blocks for d_out, _ in block), default=self.hidden)
        attention = self.heads * seq_len * tokens * FP32  # attention probabilities, (heads, L, L) per sequence
        return tokens * (10 * self.hidden + 4 * widest) * self.dtype_bytes + attention


def model_shapes(model: nn.Module, config: DPrunerConfig) -> ModelShapes:
    """The shapes of `model` and of the target linears `config` selects in each decoder block."""
    params = list(model.parameters())  # each shared (tied) parameter once
    blocks = find_decoder_blocks(model)
    embeddings = model.get_input_embeddings().weight
    output = model.get_output_embeddings()
    block_shapes, block_bytes = [], []
    for i, block in enumerate(blocks.blocks):
        targets = find_target_linears(block, f"{blocks.name}.{i}", config.targets, config.ignore)
        block_shapes.append([tuple(m.weight.shape) for m in targets.values()])
        block_bytes.append(sum(p.numel() * p.element_size() for p in block.parameters()))
    return ModelShapes(
        weight_bytes=sum(p.numel() * p.element_size() for p in params),
        dtype_bytes=embeddings.element_size(),
        hidden=embeddings.shape[1],
        vocab=(output.weight.shape[0] if output is not None else embeddings.shape[0]),
        heads=int(getattr(model.config, "num_attention_heads", 1) or 1),
        blocks=block_shapes,
        block_bytes=block_bytes,
        params=sum(p.numel() for p in params),
    )
