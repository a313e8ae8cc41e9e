"""The cost model: each stage of a pruning run, its peak memory added up from what it holds and its seconds from
operation counts divided by the device's rates."""

from __future__ import annotations

import math

from torch import nn

from ..configuration import DPrunerConfig, MethodName
from ..methods.registry import reconstructs
from ..methods.statistics import GRAM_BLOCK
from .estimates import MIB, RunEstimate, StageEstimate
from .rates import Rates, measure_rates
from .shapes import FP32, OPS_PER_BLOCK, model_shapes

__all__ = ["estimate_run"]


def estimate_run(
    model: nn.Module,
    config: DPrunerConfig,
    *,
    runtime_bytes: int = 0,
    rates: Rates | None = None,
    num_processes: int = 1,
    offloaded: bool = False,
    domain_data: bool = False,
) -> RunEstimate:
    """Expected peak memory and seconds of each stage of `config`'s run on `model`.

    `model` may live on the `meta` device: only shapes and dtypes are read. On CPU the peaks are the process's
    resident memory (pass `runtime_bytes`, its size without the model); with an accelerator they are the
    execution device's memory (`runtime_bytes=0`), where an `offloaded` model (kept in CPU RAM, blocks moved
    one at a time) counts one block instead of all weights; every stage holds all of them, a memory-mapped
    checkpoint's too (`prune()` reads every weight for NaN/inf before it cuts the text). `num_processes` splits each
    domain batch (DDP), and with `domain_parallelism="fsdp"` the domain stage's weights too. `domain_data`: a
    baseline also gets domain windows (calibration mixing).

    Parts of a peak:
    - `weights`: every parameter; in the block-wise stages of an offloaded model, one decoder block (the domain
      stage moves the whole model to the execution device);
    - `activations`: hidden states of all calibration sequences, twice while a block's outputs replace them
      (block stages), or the checkpointed forward/backward of one step: saved block inputs, one block's
      recomputed activations, and four copies of the fp32 logits for the loss (domain stage);
    - `statistics`: one block's Hessians (SparseGPT) or input norms (Wanda);
    - `scores`: D-Pruner's G (and I), `importance_dtype`;
    - `workspace`: temporaries of the largest matrix (OBS factorisation, masks, gradient hooks, sorting).
    """
    method = config.method
    s = model_shapes(model, config)
    rates = rates or measure_rates("cpu")
    imp_bytes = 2 if config.importance_dtype == "bfloat16" else 4
    numels = [d_out * d_in for d_out, d_in in s.targets]
    score_bytes = sum(numels) * imp_bytes
    largest = max(s.targets, key=lambda t: t[0] * t[1])
    widest_in = max(d_in for _, d_in in s.targets)
    L = config.seq_len
    weights = max(s.block_bytes) if offloaded else s.weight_bytes
    base = {"runtime": runtime_bytes, "weights": weights}

    def block_stage(kind: str, num_samples: int, with_scores: bool) -> StageEstimate:
        hidden = num_samples * L * s.hidden * s.dtype_bytes
        parts = dict(base)
        parts["activations"] = (0 if kind == "magnitude" else 2 * hidden) + s.block_activation_bytes(L, L)
        if kind in ("sparsegpt", "obs"):
            parts["statistics"] = max(sum(d_in * d_in * FP32 for _, d_in in block) for block in s.blocks)
            d_out, d_in = largest
            parts["workspace"] = 4 * d_out * d_in * FP32 + 3 * widest_in * widest_in * FP32
        elif kind == "wanda":
            parts["workspace"] = 4 * largest[0] * largest[1] * FP32
        else:
            parts["workspace"] = 3 * largest[0] * largest[1] * FP32
        if with_scores:
            parts["scores"] = score_bytes + max(s.block_bytes)  # G, and one block's original weights
        flops = 0.0
        ops = 0
        if kind != "magnitude":  # calibration pass (+ propagation pass when weights change)
            passes = 1 if kind == "obs" else 2
            flops += passes * s.forward_flops(num_samples * L, L, head=False)
            ops += passes * num_samples * len(s.blocks) * OPS_PER_BLOCK
        if kind in ("sparsegpt", "obs"):
            # Hessians: the upper triangle of x^T x in row blocks (methods/statistics.py), ~d_in (d_in + block) per token
            flops += sum(num_samples * L * d_in * (d_in + GRAM_BLOCK) for _, d_in in s.targets)
        elements = 10 * sum(numels)  # scores, masks, weight writes
        if kind == "sparsegpt":
            flops += sum(d_out * d_in * d_in + 2 * d_in**3 for d_out, d_in in s.targets)  # lazy updates, factorisation
            elements += sum(3 * d_out * d_in * config.block_size // 2 for d_out, d_in in s.targets)  # in-block updates
            ops += sum(10 * d_in for _, d_in in s.targets)  # the column loop's small kernels
        seconds = flops / rates.matmul_flops + ops * rates.op_seconds + elements / rates.elementwise
        return StageEstimate("", parts, seconds)

    stages = [StageEstimate("calibration_data", dict(base), 0.0)]
    reconstruct = reconstructs(config)
    # windows of a block-wise pass over general (and domain) data; a set with no share is left out
    beta = config.mixing_weight
    both = method == MethodName.DPRUNER.value or domain_data
    mixed_windows = (config.num_samples if not both or beta < 1 else 0) + (config.domain_num_samples if both and beta > 0 else 0)
    if method == MethodName.DPRUNER.value:
        has_general = config.general_importance != "none"
        if has_general:
            general = block_stage("sparsegpt" if config.general_importance == "sparsegpt" else "obs", config.num_samples, True)
            general.stage = "general_importance"
        batch = max(1, config.domain_batch_size // num_processes)
        tokens = batch * L
        if config.gradient_checkpointing:
            saved = len(s.blocks) * tokens * s.hidden * s.dtype_bytes + s.block_activation_bytes(tokens, L)
        else:
            saved = len(s.blocks) * s.block_activation_bytes(tokens, L)
        logits = 4 * tokens * s.vocab * FP32
        domain_parts = {"runtime": runtime_bytes, "weights": s.weight_bytes}  # the whole model on the device
        if config.domain_parallelism == "fsdp" and num_processes > 1:  # 1/N of it, plus one gathered block
            shard = s.weight_bytes // num_processes + max(s.block_bytes)
            domain_parts["weights"] = shard + (s.weight_bytes if runtime_bytes else 0)  # on CPU: next to the model
        domain_parts["activations"] = saved + logits
        domain_parts["scores"] = (2 if has_general else 1) * score_bytes
        domain_parts["workspace"] = 6 * max(numels) * FP32
        if config.learning_rate > 0 and config.apply_mask_to == "pretrained":
            domain_parts["pretrained copy"] = sum(numels) * s.dtype_bytes
        passes = 2 if config.learning_rate > 0 and config.max_grad_norm > 0 else 1
        steps = config.domain_epochs * math.ceil(config.domain_num_samples / config.domain_batch_size)
        step_flops = s.forward_flops(tokens, L, head=True) * (4 if config.gradient_checkpointing else 3) * passes
        step_ops = (4 * len(s.blocks) * OPS_PER_BLOCK + 15 * len(numels)) * passes
        step_seconds = step_flops / rates.matmul_flops + 20 * sum(numels) * passes / rates.elementwise + step_ops * rates.op_seconds
        domain = StageEstimate("domain_importance", domain_parts, steps * step_seconds)
        if reconstruct:  # I, then the block-wise pass that masks and updates
            last = block_stage("sparsegpt", mixed_windows, False)
            last.stage = "reconstruction"
            last.parts["scores"] = (2 if has_general else 1) * score_bytes
        else:
            masking_parts = {"runtime": runtime_bytes, "weights": 0 if offloaded else s.weight_bytes}
            masking_parts["scores"] = 2 * score_bytes
            masking_parts["workspace"] = 4 * max(numels) * FP32
            last = StageEstimate("masking", masking_parts, sum(n * math.log2(max(n, 2)) for n in numels) / rates.elementwise)
        stages += ([general] if has_general else []) + [domain, last]
    else:
        prune = block_stage("sparsegpt" if reconstruct else method, mixed_windows, False)
        prune.stage = "prune"
        stages.append(prune)
    return RunEstimate(
        stages,
        {
            "method": method,
            "params": s.params,
            "weight_mib": round(s.weight_bytes / MIB, 1),
            "runtime_mib": round(runtime_bytes / MIB, 1),
            "matmul_gflops": round(rates.matmul_flops / 1e9, 1),
            "processes": num_processes,
        },
    )
