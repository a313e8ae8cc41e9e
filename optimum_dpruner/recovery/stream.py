"""The training stream of a recovery run: fixed-length general and domain windows, interleaved by `domain_share`.

Windows are cut by `data.calibration_samples` (seeded order of texts, each text followed by a blank line, the
tokenizer's BOS first when it adds one). The stream has exactly `steps x batch_size` windows, in a fixed order:
position i is a domain window when `floor((i + 1) s) > floor(i s)` (s = `domain_share`), so every prefix of the
stream holds the share, rounded. Each side's windows are taken in order and cycled when the budget needs more than
were cut. The Trainer reads the stream sequentially, so one process and several (each taking its consecutive
share of every step's batch) see the same global batches.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

import torch
from torch.utils.data import Dataset

from ..data.calibration import calibration_samples, window_bos_id
from ..errors import DataError
from .config import RecoveryConfig

__all__ = ["WindowStream", "stream_layout", "build_stream", "describe_source"]


def stream_layout(length: int, domain_share: float) -> list[bool]:
    """`True` where position i of a stream of `length` windows is a domain window (see the module docstring)."""
    return [int((i + 1) * domain_share) > int(i * domain_share) for i in range(length)]


class WindowStream(Dataset):
    """The windows of a run in training order, as `{"input_ids", "labels"}` items (labels = inputs; the model shifts).

    Args:
        general (`list[torch.Tensor]`): general windows, `(1, seq_len)` each.
        domain (`list[torch.Tensor]`): domain windows.
        layout (`list[bool]`): per position, whether it takes a domain window.
    """

    def __init__(self, general: list[torch.Tensor], domain: list[torch.Tensor], layout: list[bool]) -> None:
        self.general, self.domain, self.layout = general, domain, layout
        self._index = []
        counts = [0, 0]
        for is_domain in layout:
            side = int(is_domain)
            self._index.append((side, counts[side]))
            counts[side] += 1

    def __len__(self) -> int:
        return len(self.layout)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        side, k = self._index[i]
        windows = self.domain if side else self.general
        ids = windows[k % len(windows)].view(-1)
        return {"input_ids": ids, "labels": ids.clone()}

    @property
    def domain_windows_used(self) -> int:
        return sum(self.layout)


def describe_source(source: Any) -> str:
    """A short description of a data source for the saved config and the card."""
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    if isinstance(source, (list, tuple)):
        return f"<list of {len(source)} texts>"
    name = getattr(getattr(source, "info", None), "dataset_name", None) or type(source).__name__
    return f"<{name}>"


def _fingerprint(windows: list[torch.Tensor], source: Any, used: int, bos: int | None) -> dict[str, Any]:
    digest = hashlib.sha256()
    for w in windows:
        digest.update(w.numpy().tobytes())
    return {"source": describe_source(source), "windows": len(windows), "windows_used": used,
            "tokens_used": used * int(windows[0].shape[-1]), "bos_token_id": bos, "sha256": digest.hexdigest()}


def _cut(source: Any, argument: str, tokenizer, wanted: int, config: RecoveryConfig, seed: int, model_config) -> list[torch.Tensor]:
    if source is None:
        raise DataError(f"{argument} is needed: the stream takes {wanted} windows from it (domain_share="
                        f"{config.domain_share}); pass a dataset, or set domain_share to 0 or 1.")
    try:
        return calibration_samples(source, tokenizer, wanted, config.seq_len, seed, config.text_column, model_config,
                                   config.add_bos)
    except DataError as e:
        shown = repr(source) if isinstance(source, (str, os.PathLike)) else describe_source(source)
        raise DataError(f"{argument}={shown}: {e}") from None


def build_stream(general_ds: Any, domain_ds: Any, tokenizer, config: RecoveryConfig, model_config=None
                 ) -> tuple[WindowStream, dict[str, Any]]:
    """The stream of a run and the fingerprints of its data (`{"general": {...}, "domain": {...}}`).

    Raises:
        `DataError`: a side the stream needs has no dataset, or too little text for one window.
    """
    layout = stream_layout(config.steps * config.batch_size, config.domain_share)
    needed = {"domain": sum(layout), "general": len(layout) - sum(layout)}
    caps = {"domain": config.domain_num_samples, "general": config.general_num_samples}
    sources = {"general": general_ds, "domain": domain_ds}
    windows: dict[str, list[torch.Tensor]] = {"general": [], "domain": []}
    bos = window_bos_id(tokenizer, config.add_bos)
    fingerprints = {}
    for offset, side in enumerate(("general", "domain")):
        if needed[side] == 0:
            continue
        wanted = min(needed[side], caps[side] or needed[side])
        windows[side] = _cut(sources[side], f"{side}_ds", tokenizer, wanted, config, config.seed + offset, model_config)
        fingerprints[side] = _fingerprint(windows[side], sources[side], needed[side], bos)
    return WindowStream(windows["general"], windows["domain"], layout), fingerprints
