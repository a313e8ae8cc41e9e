"""Expected peak memory and time of each stage of a pruning run, computed from shapes before any work starts.

Memory is added up from what each stage holds at its peak (see `estimate`); every part is listed, so a
surprising total can be traced. Time comes from operation counts divided by rates measured on the execution
device in a fraction of a second (a matrix product, an element-wise pass, a small-kernel round trip); it is a
rough guide, not a promise. `benchmarks/memory_scaling.py` compares both with measurements.
"""

from __future__ import annotations

import bisect
import math
import time
from dataclasses import dataclass, field

import torch
from torch import nn

from .configuration import DPrunerConfig, MethodName
from .methods.registry import reconstructs
from .methods.statistics import GRAM_BLOCK
from .models.loading import find_decoder_blocks, find_target_linears
from .runtime.offload import resolve_device
from .tables import format_table

__all__ = ["StageEstimate", "RunEstimate", "estimate", "estimate_run", "measure_rates", "resident_parameter_bytes", "runtime_rss"]

MIB = 2**20
_FP32 = 4
_OPS_PER_BLOCK = 40  # kernels in one decoder block's forward (norms, projections, rotary, attention, MLP)


@dataclass
class StageEstimate:
    """One stage: expected peak memory (bytes, split into named parts) and seconds."""

    stage: str
    parts: dict[str, int]
    seconds: float

    @property
    def peak_bytes(self) -> int:
        return sum(self.parts.values())


@dataclass
class RunEstimate:
    """The estimate of a run: one `StageEstimate` per stage, in order, and what it assumed."""

    stages: list[StageEstimate]
    assumptions: dict[str, object] = field(default_factory=dict)

    @property
    def peak_bytes(self) -> int:
        return max(s.peak_bytes for s in self.stages)

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.stages)

    def to_dict(self) -> dict:
        return {
            "peak_mib": round(self.peak_bytes / MIB, 1),
            "seconds": round(self.seconds, 1),
            "stages": {
                s.stage: {
                    "peak_mib": round(s.peak_bytes / MIB, 1),
                    "seconds": round(s.seconds, 1),
                    "parts_mib": {k: round(v / MIB, 1) for k, v in s.parts.items()},
                }
                for s in self.stages
            },
            "assumptions": self.assumptions,
        }

    def __str__(self) -> str:
        rows = [
            (s.stage, f"{s.peak_bytes / MIB:.0f}", f"{s.seconds:.0f}",
             ", ".join(f"{k} {v / MIB:.0f}" for k, v in sorted(s.parts.items(), key=lambda kv: -kv[1])[:3]))
            for s in self.stages
        ]
        rows.append(("run", f"{self.peak_bytes / MIB:.0f}", f"{self.seconds:.0f}", "(peak of the stages; total time)"))
        return format_table(rows, ("stage", "peak MiB", "seconds", "largest parts"), align="lrrl", rule=False)


@dataclass(frozen=True)
class Rates:
    """Throughputs of the execution device: fp32 matmul flop/s, element-wise element/s, seconds per small op."""

    matmul_flops: float
    elementwise: float
    op_seconds: float


def measure_rates(device: torch.device | str = "cpu") -> Rates:
    """Time a 512x1024x1024 fp32 matrix product, an element-wise pass over 4M elements and 200 tiny ops."""
    device = resolve_device(device)

    def best(fn, repeat: int = 3) -> float:
        fn()
        times = []
        for _ in range(repeat):
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            start = time.perf_counter()
            fn()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            times.append(time.perf_counter() - start)
        return min(times)

    a = torch.randn(512, 1024, device=device)
    b = torch.randn(1024, 1024, device=device)
    matmul = best(lambda: a @ b)
    x = torch.randn(4 * 2**20, device=device)
    elementwise = best(lambda: x.mul(1.0001))
    tiny = torch.zeros(64, device=device)

    def ops() -> None:
        for _ in range(200):
            tiny.add_(1.0)

    op = best(ops) / 200
    return Rates(2 * 512 * 1024 * 1024 / matmul, x.numel() / elementwise, op)


@dataclass(frozen=True)
class _Shapes:
    """What the estimate needs to know about a model."""

    weight_bytes: int
    dtype_bytes: int
    hidden: int
    vocab: int
    heads: int
    blocks: list[list[tuple[int, int]]]  # (d_out, d_in) of each target, per block
    block_bytes: list[int]
    params: int

    @property
    def targets(self) -> list[tuple[int, int]]:
        return [t for block in self.blocks for t in block]


def _shapes(model: nn.Module, config: DPrunerConfig) -> _Shapes:
    params = list(model.parameters())  # each shared (tied) parameter once
    blocks = find_decoder_blocks(model)
    embeddings = model.get_input_embeddings().weight
    output = model.get_output_embeddings()
    block_shapes, block_bytes = [], []
    for i, block in enumerate(blocks.blocks):
        targets = find_target_linears(block, f"{blocks.name}.{i}", config.targets, config.ignore)
        block_shapes.append([tuple(m.weight.shape) for m in targets.values()])
        block_bytes.append(sum(p.numel() * p.element_size() for p in block.parameters()))
    return _Shapes(
        weight_bytes=sum(p.numel() * p.element_size() for p in params),
        dtype_bytes=embeddings.element_size(),
        hidden=embeddings.shape[1],
        vocab=(output.weight.shape[0] if output is not None else embeddings.shape[0]),
        heads=int(getattr(model.config, "num_attention_heads", 1) or 1),
        blocks=block_shapes,
        block_bytes=block_bytes,
        params=sum(p.numel() for p in params),
    )


def _forward_flops(s: _Shapes, tokens: int, seq_len: int, head: bool) -> float:
    """Matmul flops of one forward pass of the blocks (and the LM head if `head`) over `tokens` tokens."""
    linear = sum(d_out * d_in for d_out, d_in in s.targets) + (s.vocab * s.hidden if head else 0)
    attention = len(s.blocks) * 2 * seq_len * s.hidden  # scores and weighted sum, per token
    return 2 * tokens * (linear + attention)


def _block_activation_bytes(s: _Shapes, tokens: int, seq_len: int) -> int:
    """What one block's forward keeps alive for `tokens` tokens (with autograd: saved for backward)."""
    widest = max((d_out for block in s.blocks for d_out, _ in block), default=s.hidden)
    attention = s.heads * seq_len * tokens * _FP32  # attention probabilities, (heads, L, L) per sequence
    return tokens * (10 * s.hidden + 4 * widest) * s.dtype_bytes + attention


def _file_mappings() -> list[tuple[int, int, int]]:
    """(start, end, resident bytes) of this process's file-backed memory mappings, sorted (Linux `smaps`)."""
    mappings: list[tuple[int, int, int]] = []
    try:
        with open("/proc/self/smaps") as f:
            current = None
            for line in f:
                head = line.split(None, 6)
                if "-" in head[0] and not head[0].endswith(":"):
                    path = head[5].strip() if len(head) > 5 else ""
                    start, end = (int(x, 16) for x in head[0].split("-"))
                    current = (start, end) if path.startswith("/") else None
                elif current is not None and head[0] == "Rss:":
                    mappings.append((*current, int(head[1]) * 1024))
                    current = None
    except OSError:
        return []
    return sorted(mappings)


def resident_parameter_bytes(model: nn.Module) -> int:
    """Bytes of `model`'s CPU parameters that are resident in this process's memory now.

    A parameter copied into process memory counts in full. One that is a view of a memory-mapped file (how
    transformers loads a safetensors checkpoint in its stored dtype) counts only the pages of its mapping read so
    far; the run reads them all, so a run's peak holds the whole model either way.
    """
    mappings = _file_mappings()
    starts = [m[0] for m in mappings]
    copied, touched = 0, set()
    for p in model.parameters():
        if p.device.type != "cpu":
            continue
        i = bisect.bisect_right(starts, p.data_ptr()) - 1
        if i >= 0 and p.data_ptr() < mappings[i][1]:
            touched.add(i)
        else:
            copied += p.numel() * p.element_size()
    return copied + sum(mappings[i][2] for i in touched)


def runtime_rss(model: nn.Module | None = None) -> int:
    """This process's resident size without `model`'s parameters, once the libraries a run loads are imported
    (datasets reads the calibration data; importing it here counts its share, which `prune()` would add on top
    of a bare runtime)."""
    import datasets  # noqa: F401

    from .runtime.memory import current_rss

    return max(current_rss() - (resident_parameter_bytes(model) if model is not None else 0), 0)


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
    s = _shapes(model, config)
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
        parts["activations"] = (0 if kind == "magnitude" else 2 * hidden) + _block_activation_bytes(s, L, L)
        if kind in ("sparsegpt", "obs"):
            parts["statistics"] = max(sum(d_in * d_in * _FP32 for _, d_in in block) for block in s.blocks)
            d_out, d_in = largest
            parts["workspace"] = 4 * d_out * d_in * _FP32 + 3 * widest_in * widest_in * _FP32
        elif kind == "wanda":
            parts["workspace"] = 4 * largest[0] * largest[1] * _FP32
        else:
            parts["workspace"] = 3 * largest[0] * largest[1] * _FP32
        if with_scores:
            parts["scores"] = score_bytes + max(s.block_bytes)  # G, and one block's original weights
        flops = 0.0
        ops = 0
        if kind != "magnitude":  # calibration pass (+ propagation pass when weights change)
            passes = 1 if kind == "obs" else 2
            flops += passes * _forward_flops(s, num_samples * L, L, head=False)
            ops += passes * num_samples * len(s.blocks) * _OPS_PER_BLOCK
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
            saved = len(s.blocks) * tokens * s.hidden * s.dtype_bytes + _block_activation_bytes(s, tokens, L)
        else:
            saved = len(s.blocks) * _block_activation_bytes(s, tokens, L)
        logits = 4 * tokens * s.vocab * _FP32
        domain_parts = {"runtime": runtime_bytes, "weights": s.weight_bytes}  # the whole model on the device
        if config.domain_parallelism == "fsdp" and num_processes > 1:  # 1/N of it, plus one gathered block
            shard = s.weight_bytes // num_processes + max(s.block_bytes)
            domain_parts["weights"] = shard + (s.weight_bytes if runtime_bytes else 0)  # on CPU: next to the model
        domain_parts["activations"] = saved + logits
        domain_parts["scores"] = (2 if has_general else 1) * score_bytes
        domain_parts["workspace"] = 6 * max(numels) * _FP32
        if config.learning_rate > 0 and config.apply_mask_to == "pretrained":
            domain_parts["pretrained copy"] = sum(numels) * s.dtype_bytes
        passes = 2 if config.learning_rate > 0 and config.max_grad_norm > 0 else 1
        steps = config.domain_epochs * math.ceil(config.domain_num_samples / config.domain_batch_size)
        step_flops = _forward_flops(s, tokens, L, head=True) * (4 if config.gradient_checkpointing else 3) * passes
        step_ops = (4 * len(s.blocks) * _OPS_PER_BLOCK + 15 * len(numels)) * passes
        step_seconds = step_flops / rates.matmul_flops + 20 * sum(numels) * passes / rates.elementwise + step_ops * rates.op_seconds
        domain = StageEstimate("domain_importance", domain_parts, steps * step_seconds)
        if reconstruct:  # I, then the block-wise pass that masks and updates
            last = block_stage("sparsegpt", mixed_windows, False)
            last.stage = "reconstruction"
            last.parts["scores"] = (2 if has_general else 1) * score_bytes
        else:
            masking_parts = {"runtime": runtime_bytes, "weights": 0 if offloaded else s.weight_bytes}
            masking_parts["scores"] = 2 * score_bytes
            masking_parts["workspace"] = 4 * max(numels) * _FP32
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


def estimate(
    model_or_path=None,
    config: DPrunerConfig | None = None,
    dtype: str | torch.dtype | None = None,
    device: str | torch.device | None = None,
    domain_data: bool = False,
) -> RunEstimate:
    """Expected peak memory and time of each stage of pruning `model_or_path` with `config`, without loading
    its weights (the architecture is built on the `meta` device).

    Args:
        model_or_path (*optional*): a model folder, hub id, `.gguf` file or loaded model; defaults to the embedded
            SmolLM2-135M-Instruct.
        config (`DPrunerConfig`, *optional*): the run's options.
        dtype (`str` or `torch.dtype`, *optional*): the dtype the model will be loaded in.
        device (`str` or `torch.device`, *optional*): the device the model will be loaded on (default: CPU).
        domain_data (`bool`, *optional*, defaults to `False`): a baseline will get domain data as well (calibration
            mixing); D-Pruner always does.

    Example:
        ```python
        >>> from optimum_dpruner import DPrunerConfig, estimate
        >>> print(estimate(config=DPrunerConfig(method="dpruner")))
        ```
    """
    from .models.loading import load_model_skeleton

    if model_or_path is None:
        from .models.default_model import ensure_default_model

        model_or_path = ensure_default_model()
    config = config or DPrunerConfig()
    load_device = resolve_device(device or "cpu")
    execution = resolve_device(config.execution_device or load_device)
    return estimate_for_device(load_model_skeleton(model_or_path, dtype), config, execution, load_device, runtime_rss(),
                               domain_data=domain_data)


def estimate_for_device(
    model: nn.Module,
    config: DPrunerConfig,
    execution: torch.device,
    model_home: torch.device,
    runtime_bytes: int,
    domain_data: bool = False,
) -> RunEstimate:
    """`estimate_run` with rates probed on `execution` and the process count of the launch; shared by
    `estimate()` (a skeleton) and `DPruner.estimate()` (the loaded model). `model_home` is where the weights
    live between blocks; `runtime_bytes` the process's resident size without them (used when running on CPU)."""
    from .runtime.distributed import current_process_group

    on_cpu = execution.type == "cpu"
    return estimate_run(
        model,
        config,
        runtime_bytes=runtime_bytes if on_cpu else 0,
        rates=measure_rates(execution),
        num_processes=current_process_group().num_processes,
        offloaded=not on_cpu and model_home.type == "cpu",
        domain_data=domain_data,
    )
