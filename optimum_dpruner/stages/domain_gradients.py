"""D-Pruner's domain stage: gradients of the domain loss, folded into the dual importance as they are produced.

A post-accumulate-grad hook on each target weight turns its gradient g into the regularised g~, adds the step's
Taylor score to I, optionally takes the SGD step (LOMO style: the update is fused into the hook), and frees the
gradient at once. A full set of gradients is never held: memory is weights + activations + G + I.
With weight updates and gradient clipping, each step runs two backward passes (as LOMO does): the first
scores at the current weights and measures the global norm of g~, the second applies the clipped update.

Launched on several processes (`optimum_dpruner.runtime.distributed`), each step's batch is split over them and the hook
averages g over the processes before using it, so every process computes the same I. On an FSDP replica
(`optimum_dpruner.runtime.sharding`) the gradient arrives averaged and sharded by rows: each process scores (and updates)
its rows, and the rows are summed into the full I on every process at the end.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch
from torch import nn
from tqdm.auto import tqdm

from ..configuration import DPrunerConfig
from ..runtime.distributed import ProcessGroup, current_process_group
from ..errors import ConfigError, UnsupportedModelError
from ..runtime.hooks import HookManager
from ..methods.dpruner import regularised_gradient, taylor_importance
from . import model_device
from ..runtime.timers import StageTimer
from ..runtime.sharding import local_tensor, shard_rows

__all__ = ["DomainStats", "collect_dual_importance"]

logger = logging.getLogger(__name__)


@dataclass
class DomainStats:
    """Output of the domain stage.

    Args:
        importance (`dict[str, torch.Tensor]`): I per target matrix.
        grad_l1 (`dict[str, float]`): sum of |g| per matrix over the scored steps.
        delta_l1 (`dict[str, float]`): sum of |g~ - g| per matrix (the regulariser's contribution).
        steps (`int`): optimisation steps scored.
        losses (`list[float]`): domain loss of each step.
    """

    importance: dict[str, torch.Tensor]
    grad_l1: dict[str, float] = field(default_factory=dict)
    delta_l1: dict[str, float] = field(default_factory=dict)
    steps: int = 0
    losses: list[float] = field(default_factory=list)

    def regulariser_ratio(self) -> dict[str, float]:
        """|g~ - g| / |g| per matrix (L1 over all entries and steps)."""
        return {n: (self.delta_l1[n] / self.grad_l1[n]) if self.grad_l1[n] else 0.0 for n in self.importance}


@contextlib.contextmanager
def _training_state(model: nn.Module, targets: dict[str, nn.Linear], checkpointing: bool) -> Iterator[None]:
    """Only the target weights require grad, dropout is off, checkpointing as asked; all restored on exit."""
    saved_flags = [(p, p.requires_grad) for p in model.parameters()]
    was_training = model.training
    had_checkpointing = bool(getattr(model, "is_activation_checkpointing", False))
    try:
        for p in model.parameters():
            p.requires_grad_(False)
        for name, module in targets.items():
            if not module.weight.dtype.is_floating_point:
                raise UnsupportedModelError(
                    f"{name}.weight has dtype {module.weight.dtype}, which cannot get gradients; D-Pruner's domain "
                    "stage needs floating-point target weights (load the model unquantized)."
                )
            module.weight.requires_grad_(True)
        model.train()
        for m in model.modules():  # deterministic scores: no dropout
            if isinstance(m, nn.Dropout):
                m.eval()
        if checkpointing and not had_checkpointing and getattr(model, "supports_gradient_checkpointing", False):
            model.activation_checkpointing_enable()
        yield
    finally:
        if checkpointing and not had_checkpointing and getattr(model, "supports_gradient_checkpointing", False):
            model.activation_checkpointing_disable()
        for p, flag in saved_flags:
            p.requires_grad_(flag)
            p.grad = None
        model.train(was_training)


def _global_batches(samples: list[torch.Tensor], config: DPrunerConfig, group: ProcessGroup) -> list[list[torch.Tensor]]:
    """The steps' batches of `domain_batch_size` samples (the last may be shorter), checked to split over `group`."""
    size = config.domain_batch_size
    batches = [samples[i : i + size] for i in range(0, len(samples), size)]
    n = group.num_processes
    if size % n:
        raise ConfigError(
            f"domain_batch_size={size} cannot be split over {n} processes; set it to a multiple of {n} "
            f"(each process then takes domain_batch_size / {n} sequences per step)."
        )
    if len(batches[-1]) % n:
        raise ConfigError(
            f"domain_num_samples={len(samples)} leaves a last batch of {len(batches[-1])} sequences, which cannot be "
            f"split over {n} processes; set domain_num_samples to a multiple of {n}."
        )
    return batches


def collect_dual_importance(
    model: nn.Module,
    samples: list[torch.Tensor],
    targets: dict[str, nn.Linear],
    general: dict[str, torch.Tensor] | None,
    config: DPrunerConfig,
    progress: bool = True,
    group: ProcessGroup | None = None,
    sharded: bool = False,
    timer: StageTimer | None = None,
) -> DomainStats:
    """Accumulate D-Pruner's dual importance I over the domain samples (see module doc).

    Args:
        model (`nn.Module`): the causal LM (weights updated in place only if `config.learning_rate > 0`).
        samples (`list[torch.Tensor]`): domain input ids, each `(1, seq_len)`.
        targets (`dict[str, nn.Linear]`): the matrices to score.
        general (`dict[str, torch.Tensor]`, *optional*): G for each target (the regulariser); `None`: no
            regulariser (`general_importance="none"`).
        config (`DPrunerConfig`): `lambda_reg`, `alpha`, `learning_rate`, `domain_epochs`, `max_grad_norm`,
            `domain_batch_size`, `gradient_checkpointing`, `importance_dtype`, `importance_device`, `seed`.
        progress (`bool`, *optional*, defaults to `True`): show a progress bar.
        group (`ProcessGroup`, *optional*): the processes sharing the work; defaults to the launched group.
        sharded (`bool`, *optional*, defaults to `False`): `model` is an FSDP replica sharded over `group`
            (`sharding.sharded_replica`) and `targets` are its modules.
        timer (`StageTimer`, *optional*): receives `domain_forward`, `domain_backward` and `domain_scoring` seconds.

    Returns:
        `DomainStats`: I per matrix and the regulariser's relative size (the same on every process).

    Raises:
        `ConfigError`: launched on several processes and a batch cannot be split evenly over them.
    """
    missing = [n for n in targets if n not in general] if general is not None else []
    if missing:
        raise KeyError(f"no general importance for {missing[:3]}")
    group = group or current_process_group()
    timer = timer or StageTimer()
    dtype = getattr(torch, config.importance_dtype)
    stats = DomainStats(
        importance={
            # sharded: next to G (the replica's device holds only 1/N of the weights)
            n: torch.zeros(m.weight.shape, dtype=dtype,
                           device=config.importance_device or (general[n].device if sharded and general else m.weight.device))
            for n, m in targets.items()
        }
    )
    # per-matrix sums kept as device tensors (no sync per gradient), read once at the end
    grad_l1 = {n: torch.zeros((), device=stats.importance[n].device) for n in targets}
    delta_l1 = {n: torch.zeros((), device=stats.importance[n].device) for n in targets}
    names = {id(m.weight): n for n, m in targets.items()}
    fired: set[str] = set()
    lr0 = config.learning_rate
    two_pass = lr0 > 0 and config.max_grad_norm > 0
    state = {"lr": lr0, "score": True, "update": False, "clip": 1.0, "sq_norm": 0.0}

    def on_grad(param: torch.Tensor) -> None:
        name = names[id(param)]
        fired.add(name)
        if sharded:  # FSDP averaged the gradient already; this process holds `rows` of it and of the weight
            grad, weight, rows = local_tensor(param.grad), local_tensor(param.detach()), shard_rows(param.shape[0], group)
        else:
            grad, weight, rows = group.mean(param.grad), param.detach(), slice(None)
        alpha = state["lr"] if lr0 > 0 else config.alpha
        with torch.no_grad(), timer("domain_scoring", sync=False):
            g = general[name][rows].to(grad.device) if general is not None else None
            g_reg, added = regularised_gradient(grad, g, config.lambda_reg, alpha)
            if state["score"]:
                imp = stats.importance[name][rows]
                imp += taylor_importance(g_reg, weight).to(device=imp.device, dtype=imp.dtype)
                grad_l1[name] += torch.linalg.vector_norm(grad, ord=1, dtype=torch.float32)
                delta_l1[name] += added
                if two_pass:
                    state["sq_norm"] += float(g_reg.pow(2).sum())
            if state["update"]:
                weight.add_(g_reg.to(weight.dtype), alpha=-state["lr"] * state["clip"])
        param.grad = None

    device = model_device(model)
    batches = [torch.cat(group.local_slice(global_batch)) for global_batch in _global_batches(samples, config, group)]
    total_steps = config.domain_epochs * len(batches)
    torch.manual_seed(config.seed)

    def loss_of(batch: torch.Tensor) -> torch.Tensor:
        batch = batch.to(device)
        return model(input_ids=batch, labels=batch, use_cache=False).loss

    with _training_state(model, targets, config.gradient_checkpointing), HookManager() as hooks:
        for module in targets.values():
            hooks.add_post_accumulate_grad_hook(module.weight, on_grad)
        bar = tqdm(total=total_steps, desc="dpruner: domain gradients", disable=not progress or not group.is_main_process)
        for step in range(total_steps):
            batch = batches[step % len(batches)]
            state["lr"] = lr0 * (1.0 - step / total_steps)  # linear decay to 0
            state.update(score=True, update=lr0 > 0 and not two_pass, sq_norm=0.0)
            with timer("domain_forward"):
                loss = loss_of(batch)
            _timed_backward(loss, timer)
            stats.losses.append(group.mean(loss.detach()).item())
            if step == 0 and len(fired) < len(targets):
                silent = [n for n in targets if n not in fired]
                raise UnsupportedModelError(
                    f"{len(silent)} target matrices got no gradient (e.g. {silent[0]}); they must take part in the "
                    "forward pass and be trainable (no torch.no_grad / inference_mode, no quantized weights)."
                )
            if two_pass:
                norm = (_sum_floats(group, [state["sq_norm"]])[0] if sharded else state["sq_norm"]) ** 0.5
                state.update(score=False, update=True, clip=min(1.0, config.max_grad_norm / (norm + 1e-6)))
                with timer("domain_forward"):
                    loss = loss_of(batch)
                _timed_backward(loss, timer)
            stats.steps += 1
            bar.update(1)
            bar.set_postfix(loss=f"{stats.losses[-1]:.3f}")
        bar.close()
    stats.grad_l1 = {n: float(v) for n, v in grad_l1.items()}
    stats.delta_l1 = {n: float(v) for n, v in delta_l1.items()}
    if sharded:  # each process scored its own rows (zeros elsewhere): the sum is the full I everywhere
        for name in targets:
            group.sum_(stats.importance[name])
        sums = _sum_floats(group, [*stats.grad_l1.values(), *stats.delta_l1.values()])
        stats.grad_l1 = dict(zip(stats.grad_l1, sums[: len(targets)]))
        stats.delta_l1 = dict(zip(stats.delta_l1, sums[len(targets) :]))
    return stats


def _timed_backward(loss: torch.Tensor, timer: StageTimer) -> None:
    """`loss.backward()`, its seconds under `domain_backward` less the scoring done inside its gradient hooks."""
    scoring = timer.seconds.get("domain_scoring", 0.0)
    with timer("domain_backward"):
        loss.backward()
    timer.add("domain_backward", scoring - timer.seconds.get("domain_scoring", 0.0))


def _sum_floats(group: ProcessGroup, values: list[float]) -> list[float]:
    """Each value summed over the processes (fp64, so that the totals match one process's up to rounding)."""
    return group.sum_(torch.tensor(values, dtype=torch.float64)).tolist()
