"""The calibration windows of a run: the general and domain sets cut into seeded windows, what each set was (its
fingerprint, saved with the checkpoint), and their mix in the block-wise statistics."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from typing import Any

import torch

from ..configuration import DPrunerConfig
from ..data import calibration_samples, window_bos_id
from ..errors import DataError
from ..methods.statistics import mixture_weights

__all__ = ["DEFAULT_GENERAL_DATASET", "CalibrationWindows", "calibration_windows", "describe_source"]

DEFAULT_GENERAL_DATASET = "builtin:general"


def describe_source(source: Any) -> str:
    """A short name for a calibration source (a path, hub id or builtin id as given; else its type)."""
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    if isinstance(source, (list, tuple)):
        return f"list of {len(source)} texts"
    info = getattr(source, "info", None)
    return getattr(info, "dataset_name", None) or type(source).__name__


def _fingerprint(samples: list[torch.Tensor], source: Any, bos_token_id: int | None) -> dict[str, Any]:
    """What a calibration set was: source, size, the BOS each window starts with (`None`: none) and a hash."""
    digest = hashlib.sha256()
    for s in samples:
        digest.update(s.numpy().tobytes())
    return {
        "source": describe_source(source),
        "num_samples": len(samples),
        "seq_len": int(samples[0].shape[-1]),
        "add_bos": bos_token_id is not None,
        "bos_token_id": bos_token_id,
        "sha256": digest.hexdigest(),
    }


@dataclass
class CalibrationWindows:
    """The windows of a run (`None`: that set was not given or not needed) and `record`, each set's fingerprint."""

    general: list[torch.Tensor] | None = None
    domain: list[torch.Tensor] | None = None
    record: dict[str, Any] = field(default_factory=dict)

    def statistics(self, domain_weight: float) -> tuple[list[torch.Tensor] | None, list[float] | None]:
        """The windows of the block-wise statistics and their per-token weights (`None`: equal), the domain windows
        taking a `domain_weight` share; a side with no share is left out (so 0 and 1 are general-only and
        domain-only runs). Records each set's share."""
        general, domain = self.general, self.domain
        if general is None or not domain:
            return general, None
        self.record["general"]["statistics_share"] = 1.0 - domain_weight
        self.record["domain"]["statistics_share"] = domain_weight
        if domain_weight == 0:
            return general, None
        if domain_weight == 1:
            return domain, None
        tokens = [s.numel() for s in general], [s.numel() for s in domain]
        return general + domain, mixture_weights(*tokens, domain_weight)


def _windows(source: Any, argument: str, num_samples: int, tokenizer, model_config, config: DPrunerConfig):
    try:
        return calibration_samples(source, tokenizer, num_samples, config.seq_len, config.seed, config.text_column,
                                   model_config, config.add_bos)
    except DataError as e:  # name the argument the data came from
        shown = repr(source) if isinstance(source, (str, os.PathLike)) else describe_source(source)
        raise DataError(f"{argument}={shown}: {e}") from None


def calibration_windows(general_ds: Any, domain_ds: Any, tokenizer, model_config, config: DPrunerConfig) -> CalibrationWindows:
    """`num_samples` general windows (of `DEFAULT_GENERAL_DATASET` when `general_ds` is `None`) and, when
    `domain_ds` is given, `domain_num_samples` domain windows, with their fingerprints.

    Raises:
        `DataError`: a set is missing, empty or too short (the message names `general_ds` or `domain_ds`).
    """
    general_ds = DEFAULT_GENERAL_DATASET if general_ds is None else general_ds
    bos = window_bos_id(tokenizer, config.add_bos)
    windows = CalibrationWindows(general=_windows(general_ds, "general_ds", config.num_samples, tokenizer, model_config, config))
    windows.record["general"] = _fingerprint(windows.general, general_ds, bos)
    if domain_ds is not None:
        windows.domain = _windows(domain_ds, "domain_ds", config.domain_num_samples, tokenizer, model_config, config)
        windows.record["domain"] = _fingerprint(windows.domain, domain_ds, bos)
    return windows
