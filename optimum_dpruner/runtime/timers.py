"""`StageTimer`: wall time of the steps inside a pruning run, summed per step name.

The report's `breakdown` comes from one timer per run: the block-wise pipeline times the capture pass, the block
forwards, the statistic updates, the factorisations, the mask choices, the OBS updates and the propagation; the
domain stage times its forwards, backwards and the scoring inside its gradient hooks. On CUDA the timer
synchronises the device at each boundary, so that asynchronous kernels are counted where they run, except for the
steps timed inside hooks (`sync=False`: statistics, domain scoring), where a sync would stall the pass around them:
on CUDA those count only their launch time and the rest lands in the enclosing forward or backward.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import torch

__all__ = ["StageTimer"]


class StageTimer:
    """Sums seconds per step name.

    Example:
        ```python
        timer = StageTimer()
        with timer("factorisation"):
            upper = inverse_hessian_factor(hessian, 0.01)
        timer.seconds  # {"factorisation": 0.004}
        ```
    """

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @staticmethod
    def _sync() -> None:
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            torch.cuda.synchronize()

    @contextlib.contextmanager
    def __call__(self, name: str, sync: bool = True) -> Iterator[None]:
        if sync:
            self._sync()
        start = time.perf_counter()
        try:
            yield
        finally:
            if sync:
                self._sync()
            self.add(name, time.perf_counter() - start)

    def add(self, name: str, seconds: float) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds
