"""The cost model: the stages of a pruning run as `prune()` runs them, each with its peak memory added up from what
it holds and its seconds from operation counts divided by the device's rates.

The stages follow from the method `build_method(config)` returns, not from its name: the calibration windows when the
run cuts them, the model-wide stages its `preparation()` declares (a saliency walk over the blocks, the
domain-gradient pass), then the block walk under the method's `stage_name`. What a walk costs follows from the
walking method's flags: `requires_data` (windows captured and run through every block), `statistic` (a Hessian per
target, or input norms), `changes_weights` (a second pass propagates the pruned outputs) and `updates_weights`
(the OBS column pass).
"""

from __future__ import annotations

import math

from torch import nn

from ..configuration import DPrunerConfig
from ..methods import PruningMethod, build_method
from ..methods.statistics import GRAM_BLOCK, Hessian, InputNorms
from ..stages.checks import needs_calibration_windows
from .estimates import MIB, RunEstimate, StageEstimate
from .rates import Rates, measure_rates
from .shapes import FP32, OPS_PER_BLOCK, ModelShapes, model_shapes

__all__ = ["estimate_run"]


class _StageCosts:
    """The estimate of each kind of stage for one model, config and placement."""

    def __init__(self, shapes: ModelShapes, config: DPrunerConfig, rates: Rates, runtime_bytes: int, num_processes: int,
                 offloaded: bool) -> None:
        self.s, self.config, self.rates = shapes, config, rates
        self.runtime_bytes, self.num_processes, self.offloaded = runtime_bytes, num_processes, offloaded
        self.numels = [d_out * d_in for d_out, d_in in shapes.targets]
        # one score tensor (G or I) for every target, in `importance_dtype`
        self.score_bytes = sum(self.numels) * (2 if config.importance_dtype == "bfloat16" else 4)
        self.largest = max(shapes.targets, key=lambda t: t[0] * t[1])
        self.widest_in = max(d_in for _, d_in in shapes.targets)
        self.base = {"runtime": runtime_bytes, "weights": max(shapes.block_bytes) if offloaded else shapes.weight_bytes}

    def calibration(self) -> StageEstimate:
        """Cutting the calibration windows: the model held, no counted work."""
        return StageEstimate("calibration_data", dict(self.base), 0.0)

    def walk(self, method: PruningMethod, num_samples: int, stage: str, held_scores: int = 0,
             keeps_saliency: bool = False) -> StageEstimate:
        """The block walk with `method` over `num_samples` windows (`stages.walk.prune_blockwise`).

        `held_scores`: bytes of the scores that earlier stages computed and the walk reads; `keeps_saliency`: a
        saliency walk, which collects one score per target and puts each block's original weights back.
        """
        s, cfg, L = self.s, self.config, self.config.seq_len
        calibrates = method.requires_data
        statistic = method.statistic if calibrates else None
        hidden = num_samples * L * s.hidden * s.dtype_bytes
        parts = dict(self.base)
        # the hidden states of all windows, twice while a block's outputs replace them
        parts["activations"] = (2 * hidden if calibrates else 0) + s.block_activation_bytes(L, L)
        d_out, d_in = self.largest
        if statistic is Hessian:
            parts["statistics"] = max(sum(d_in * d_in * FP32 for _, d_in in block) for block in s.blocks)
            parts["workspace"] = 4 * d_out * d_in * FP32 + 3 * self.widest_in * self.widest_in * FP32
        elif statistic is InputNorms:
            parts["workspace"] = 4 * d_out * d_in * FP32
        else:
            parts["workspace"] = 3 * d_out * d_in * FP32
        if keeps_saliency:
            parts["scores"] = self.score_bytes + max(s.block_bytes)  # the saliency, and one block's original weights
        elif held_scores:
            parts["scores"] = held_scores
        flops = 0.0
        ops = 0
        if calibrates:  # the calibration pass, and the propagation pass when the weights change
            passes = 2 if method.changes_weights else 1
            flops += passes * s.forward_flops(num_samples * L, L, head=False)
            ops += passes * num_samples * len(s.blocks) * OPS_PER_BLOCK
        if statistic is Hessian:
            # the upper triangle of x^T x in row blocks (methods/statistics.py), ~d_in (d_in + block) per token
            flops += sum(num_samples * L * d_in * (d_in + GRAM_BLOCK) for _, d_in in s.targets)
        elements = 10 * sum(self.numels)  # scores, masks, weight writes
        if method.updates_weights and method.changes_weights:  # the OBS column pass (a saliency-only walk has none)
            flops += sum(d_out * d_in * d_in + 2 * d_in**3 for d_out, d_in in s.targets)  # lazy updates, factorisation
            elements += sum(3 * d_out * d_in * cfg.block_size // 2 for d_out, d_in in s.targets)  # in-block updates
            ops += sum(10 * d_in for _, d_in in s.targets)  # the column loop's small kernels
        seconds = flops / self.rates.matmul_flops + ops * self.rates.op_seconds + elements / self.rates.elementwise
        return StageEstimate(stage, parts, seconds)

    def masking(self, stage: str, held_scores: int) -> StageEstimate:
        """A data-free walk that masks every target from scores earlier stages computed: one sort per matrix."""
        parts = {"runtime": self.runtime_bytes, "weights": 0 if self.offloaded else self.s.weight_bytes}
        parts["scores"] = held_scores
        parts["workspace"] = 4 * max(self.numels) * FP32
        return StageEstimate(stage, parts, sum(n * math.log2(max(n, 2)) for n in self.numels) / self.rates.elementwise)

    def domain_gradients(self, stage: str, held_scores: int) -> StageEstimate:
        """D-Pruner's gradient pass over the domain windows (`stages.domain_gradients`): the whole model on the device
        (1/N of it under FSDP), a checkpointed forward/backward per step, the scores it accumulates."""
        s, cfg, L = self.s, self.config, self.config.seq_len
        batch = max(1, cfg.domain_batch_size // self.num_processes)
        tokens = batch * L
        if cfg.gradient_checkpointing:
            saved = len(s.blocks) * tokens * s.hidden * s.dtype_bytes + s.block_activation_bytes(tokens, L)
        else:
            saved = len(s.blocks) * s.block_activation_bytes(tokens, L)
        logits = 4 * tokens * s.vocab * FP32
        parts = {"runtime": self.runtime_bytes, "weights": s.weight_bytes}
        if cfg.domain_parallelism == "fsdp" and self.num_processes > 1:  # 1/N of it, plus one gathered block
            shard = s.weight_bytes // self.num_processes + max(s.block_bytes)
            parts["weights"] = shard + (s.weight_bytes if self.runtime_bytes else 0)  # on CPU: next to the model
        parts["activations"] = saved + logits
        parts["scores"] = held_scores
        parts["workspace"] = 6 * max(self.numels) * FP32
        if cfg.learning_rate > 0 and cfg.apply_mask_to == "pretrained":
            parts["pretrained copy"] = sum(self.numels) * s.dtype_bytes
        passes = 2 if cfg.learning_rate > 0 and cfg.max_grad_norm > 0 else 1
        steps = cfg.domain_epochs * math.ceil(cfg.domain_num_samples / cfg.domain_batch_size)
        step_flops = s.forward_flops(tokens, L, head=True) * (4 if cfg.gradient_checkpointing else 3) * passes
        step_ops = (4 * len(s.blocks) * OPS_PER_BLOCK + 15 * len(self.numels)) * passes
        rates = self.rates
        step_seconds = step_flops / rates.matmul_flops + 20 * sum(self.numels) * passes / rates.elementwise + \
            step_ops * rates.op_seconds
        return StageEstimate(stage, parts, steps * step_seconds)


def _walk_windows(method: PruningMethod, config: DPrunerConfig, domain_data: bool) -> int:
    """Windows of the block walk's statistics: the general ones, and the domain ones when the run has them (a
    method that reads domain data, or `domain_data`); a set with no share of the mix is left out."""
    beta = config.domain_weight
    both = method.requires_domain_data or domain_data
    return (config.num_samples if not both or beta < 1 else 0) + (config.domain_num_samples if both and beta > 0 else 0)


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
    - `statistics`: one block's Hessians (a method whose statistic is the Hessian);
    - `scores`: the scores the model-wide stages computed (D-Pruner's G and I), `importance_dtype`; in a saliency
      walk, the saliency it collects and one block's original weights;
    - `workspace`: temporaries of the largest matrix (OBS factorisation, masks, gradient hooks, sorting).
    """
    method = build_method(config)
    shapes = model_shapes(model, config)
    rates = rates or measure_rates("cpu")
    costs = _StageCosts(shapes, config, rates, runtime_bytes, num_processes, offloaded)
    stages = [costs.calibration()] if needs_calibration_windows(method, None) else []
    held = 0  # bytes of the scores the stages so far computed: one tensor per target each
    for stage, saliency_method in method.preparation():
        if saliency_method is None:
            stages.append(costs.domain_gradients(stage, held + costs.score_bytes))
        else:
            stages.append(costs.walk(saliency_method, config.num_samples, stage, keeps_saliency=True))
        held += costs.score_bytes
    if method.requires_data or not held:
        stages.append(costs.walk(method, _walk_windows(method, config, domain_data), method.stage_name, held))
    else:
        stages.append(costs.masking(method.stage_name, held))
    return RunEstimate(
        stages,
        {
            "method": config.method,
            "params": shapes.params,
            "weight_mib": round(shapes.weight_bytes / MIB, 1),
            "runtime_mib": round(runtime_bytes / MIB, 1),
            "matmul_gflops": round(rates.matmul_flops / 1e9, 1),
            "processes": num_processes,
        },
    )
