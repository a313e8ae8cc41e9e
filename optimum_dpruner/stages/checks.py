"""Checks of a pruning run, before it starts and after it ends: what `DPruner` refuses instead of returning a wrong model.

Before: the config's type, empty or conflicting data and score arguments, NaN/inf weights, importance scores of
another model. After: every target matrix holds at least the requested sparsity, less the rounding of its
comparison groups (`verification.minimum_zeros`).
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from typing import Any

import torch

from ..configuration import DPrunerConfig
from ..errors import ConfigError, DataError, DPrunerWarning, NumericalError, UnsupportedModelError
from ..checkpoint.importance import importance_metadata
from ..runtime.offload import parameter_value
from ..checkpoint.verification import minimum_zeros

__all__ = [
    "as_config",
    "ArgumentNames",
    "CLI_NAMES",
    "check_data_arguments",
    "needs_calibration_windows",
    "check_scores_fit",
    "check_finite_weights",
    "check_importance_model",
    "check_achieved_sparsity",
]


def as_config(config: Any) -> DPrunerConfig:
    """`config` as a `DPrunerConfig` (a dict of options is accepted); `ConfigError` for anything else."""
    if config is None:
        return DPrunerConfig()
    if isinstance(config, dict):
        return DPrunerConfig.from_dict(config)
    if not isinstance(config, DPrunerConfig):
        raise ConfigError(f"config={config!r} is a {type(config).__name__}; pass a DPrunerConfig or a dict of its options.")
    return config


def _is_empty(source: Any) -> bool:
    """Whether a calibration source is empty data (an empty string, list or `datasets.Dataset`), as opposed to `None`."""
    if isinstance(source, (str, os.PathLike)):
        return not os.fspath(source).strip()
    if isinstance(source, (list, tuple)):
        return not source
    num_rows = getattr(source, "num_rows", None)  # datasets.Dataset (an IterableDataset has none)
    return isinstance(num_rows, int) and num_rows == 0


@dataclass(frozen=True)
class ArgumentNames:
    """How the data-argument rules name what they refer to: the API's keywords (the default) or the CLI's flags."""

    general: str = "general_ds="
    domain: str = "domain_ds="
    importance: str = "importance="
    cli: bool = False

    def option(self, field: str, value: str) -> str:
        """A config option with a value, as a user of this interface writes it."""
        return f"--{field.replace('_', '-')} {value}" if self.cli else f"{field}={value!r}"


CLI_NAMES = ArgumentNames("--general-dataset", "--domain-dataset", "--importance", cli=True)


def reads_calibration_data(method, importance: Any = None) -> bool:
    """True when a prune with `method` reads calibration data: its block walk calibrates (`requires_data`), or its
    `prepare` stage needs domain data that no saved scores (`importance`) replace."""
    return method.requires_data or (importance is None and method.requires_domain_data)


def check_data_arguments(
    method, general_ds: Any, domain_ds: Any, importance: Any, default_general: str, names: ArgumentNames = ArgumentNames()
) -> None:
    """Reject data and score arguments that `method` would ignore, that hold nothing or that it lacks, before any work.

    The rules, from the method's flags: only `None` means "the default" (`default_general` for `general_ds`), and
    empty data is an error, never replaced; a method that reads no data anywhere takes no `domain_ds`; a method that
    `requires_domain_data` needs `domain_ds` unless saved scores (`importance=`) replace its `prepare` stage; saved
    scores go only to a method that `accepts_scores`, and come with data only when the block walk calibrates on it
    (`requires_data`, a reconstruction), which then needs the domain windows too. `names` words the messages for
    the API (keywords) or the CLI (flags).
    """
    from ..methods import METHODS

    for argument, source in ((names.general, general_ds), (names.domain, domain_ds)):
        if source is not None and _is_empty(source):
            shown = repr(source) if isinstance(source, (str, os.PathLike, list, tuple)) else f"<{type(source).__name__}, 0 rows>"
            default = f", or leave {argument.rstrip('=')} out for the default {default_general!r}" if argument == names.general else ""
            raise DataError(f"{argument}{' ' if names.cli else ''}{shown} is empty; pass calibration texts{default}.")
    method_option = names.option("method", method.name)
    scorers = "/".join(sorted(n for n, c in METHODS.items() if c.accepts_scores))
    calibrating = ", ".join(sorted(n for n, c in METHODS.items() if c.requires_data or c.requires_domain_data))
    if importance is None:
        if method.requires_domain_data and domain_ds is None:
            scores = f" or {names.importance}" if method.accepts_scores else ""
            raise DataError(
                f"{method_option} needs both a general and a domain dataset; pass {names.domain} (e.g. builtin:medical)"
                f"{scores}, or pick a method that takes one dataset."
            )
        if domain_ds is not None and not reads_calibration_data(method):
            raise DataError(
                f"{method_option} uses no calibration data, so {names.domain} has no effect; drop it, or use a method "
                f"that calibrates ({calibrating}) or {names.option('reconstruction', 'obs')}."
            )
        return
    if not names.cli and not isinstance(importance, (str, os.PathLike, dict)):
        raise ConfigError(f"importance={importance!r} must be a path written by save_importance or the dict result.importance.")
    if not method.accepts_scores:
        raise ConfigError(
            f"{names.importance} holds the scores of {scorers}, which {method_option} does not use; drop it, or choose "
            f"{names.option('method', scorers)} to take the masks from the scores."
        )
    if (general_ds is not None or domain_ds is not None) and not reads_calibration_data(method, importance):
        raise ConfigError(
            f"{names.importance} and calibration data were both given; drop {names.general}/{names.domain} to take the "
            f"masks from the saved scores, drop {names.importance} to compute new scores from the data, or set "
            f"{names.option('reconstruction', 'obs')} to reconstruct the surviving weights on that data."
        )
    if method.requires_data and domain_ds is None:
        raise DataError(
            f"{names.importance} with the reconstruction pass (the default recipe) needs {names.domain} too (the data "
            f"the scores came from): the pass mixes general and domain windows; or set "
            f"{names.option('reconstruction', 'none')} (the paper's preset) to take the masks from the saved scores alone."
        )


def needs_calibration_windows(method, importance: Any) -> bool:
    """Whether a run cuts calibration windows: the block walk calibrates, or `prepare` computes scores from data."""
    return method.requires_data or (method.requires_domain_data and importance is None)


def check_scores_fit(importance: dict[str, torch.Tensor], targets: dict[str, Any]) -> None:
    """`ConfigError` when scores lack a target matrix or have another shape (they belong to another model)."""
    missing = [n for n in targets if n not in importance]
    if missing:
        raise ConfigError(
            f"the importance scores lack {len(missing)} target matrices (e.g. {missing[0]}); they were computed for "
            "another model or other targets: recompute them or match `targets`/`ignore`."
        )
    for name, module in targets.items():
        if tuple(importance[name].shape) != tuple(module.weight.shape):
            raise ConfigError(
                f"importance for {name} has shape {tuple(importance[name].shape)}, the weight {tuple(module.weight.shape)}; "
                "the scores belong to another model."
            )


def check_finite_weights(model) -> None:
    """`UnsupportedModelError` naming the first parameter that holds NaN or inf (it would derail every ranking)."""
    seen: set[int] = set()
    for module_name, module in model.named_modules():
        for name, param in module.named_parameters(recurse=False):
            if id(param) in seen or not param.is_floating_point():
                continue
            seen.add(id(param))
            value = parameter_value(module, name)
            finite = torch.isfinite(value)
            if not bool(finite.all()):
                nan = int(torch.isnan(value).sum())
                full = f"{module_name}.{name}" if module_name else name
                raise UnsupportedModelError(
                    f"the weight {full} holds {nan} NaN and {value.numel() - int(finite.sum()) - nan} inf values (of "
                    f"{value.numel()}); pruning cannot rank them and would miss the requested sparsity: repair or "
                    "reload the weights (an overflowed float16 conversion, a diverged fine-tune?)."
                )


def check_importance_model(importance: Any, fingerprint: str) -> None:
    """`ConfigError` when saved scores were computed on another model than the one being pruned."""
    if isinstance(importance, dict):
        return  # scores in memory carry no fingerprint; their names and shapes are checked when masks are applied
    recorded = importance_metadata(importance).get("model_fingerprint")
    if recorded is None:
        warnings.warn(
            f"importance={os.fspath(importance)!r} records no model fingerprint (saved by an older version): it cannot "
            "be checked to belong to this model.",
            DPrunerWarning,
            stacklevel=5,  # the caller of DPruner.prune (through prepare and Run.saved_scores)
        )
    elif recorded != fingerprint:
        raise ConfigError(
            f"importance={os.fspath(importance)!r} was computed on another model (weights fingerprint "
            f"{recorded[:12]}, this model's {fingerprint[:12]}); recompute the scores on this model, or load the model "
            "they were computed on."
        )


def check_achieved_sparsity(report, cfg: DPrunerConfig, granularity: str) -> None:
    """`NumericalError` when a target matrix holds fewer zeros than the requested sparsity less rounding."""
    short = []
    for name, matrix in report.matrices.items():
        needed = minimum_zeros(matrix.shape, cfg.sparsity, cfg.pattern, granularity, cfg.block_size)
        if matrix.zeros < needed:
            short.append((name, matrix, needed))
    if short:
        name, matrix, needed = short[0]
        raise NumericalError(
            f"pruning missed sparsity={cfg.sparsity:g} in {len(short)} of {len(report.matrices)} matrices: {name} has "
            f"{matrix.zeros} zeros of {matrix.numel} ({matrix.sparsity:.4f}), fewer than the {needed} that rounding "
            "allows; the result is refused. Check the calibration data and the weights for NaN/inf."
        )
