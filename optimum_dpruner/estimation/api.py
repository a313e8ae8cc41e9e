"""The entry points: `estimate()` of a model folder, hub id or loaded model before it is loaded (a skeleton on the
`meta` device), and `estimate_for_device()`, the cost model with the execution device's rates and the launch's
process count, which `DPruner.estimate()` shares."""

from __future__ import annotations

import torch
from torch import nn

from ..configuration import DPrunerConfig
from ..models.loading import load_model_skeleton
from ..runtime.offload import resolve_device
from .cost import estimate_run
from .estimates import RunEstimate
from .rates import measure_rates
from .resident import runtime_rss

__all__ = ["estimate", "estimate_for_device"]


def estimate(
    model_or_path=None,
    config: DPrunerConfig | None = None,
    dtype: str | torch.dtype | None = None,
    device: str | torch.device | None = None,
    domain_data: bool = False,
    **hub_options,
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
        hub_options: `revision`, `cache_dir`, `trust_remote_code`... of a Hub model's config.

    Example:
        ```python
        >>> from optimum_dpruner import DPrunerConfig, estimate
        >>> print(estimate(config=DPrunerConfig(method="dpruner")))
        ```
    """
    if model_or_path is None:
        from ..models.default_model import ensure_default_model

        model_or_path = ensure_default_model()
    config = config or DPrunerConfig()
    load_device = resolve_device(device or "cpu")
    execution = resolve_device(config.execution_device or load_device)
    return estimate_for_device(load_model_skeleton(model_or_path, dtype, **hub_options), config, execution, load_device, runtime_rss(),
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
    from ..runtime.distributed import current_process_group

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
