"""Per-input statistics of a target linear layer, gathered from its inputs during the calibration pass.

One statistic serves every target linear that reads the same input tensor (q/k/v, gate/up), see
`optimum_dpruner.stages.groups`. Each calibration window `s` enters with a per-token weight `c_s`; the
pipeline sets the weights so that they sum to 1 over all tokens of all windows, each calibration set receiving its
share (`domain_weight`). With a single set, `c_s = 1 / (number of tokens)`: plain means.

- `Hessian`: H = 2 sum_s c_s sum_t x x^T, `(d_in, d_in)` fp32 (SparseGPT, OBS reconstruction). H is symmetric, so
  each batch updates only its upper triangle, in row blocks of `GRAM_BLOCK` (about half the multiply-adds of a full
  x^T x; each entry is the same dot product as in the full product, equal to it up to float rounding); `value()`
  mirrors it;
- `InputNorms`: sum_s c_s sum_t x_j^2 per input feature j, `(d_in,)` fp32 (Wanda's ||X_j||^2 up to a constant).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..errors import DataError
from ..runtime.timers import StageTimer
from .obs import inverse_hessian_factor, prepare_hessian

__all__ = ["Hessian", "InputNorms", "mixture_weights"]

GRAM_BLOCK = 128  # rows of H per update of its upper triangle (one CPU thread, d_in 1536: 1.65x faster than x^T x)


def mixture_weights(general_tokens: Sequence[int], domain_tokens: Sequence[int], domain_weight: float) -> list[float]:
    """Per-token weight of each window when general and domain windows are mixed, the domain windows taking a
    `domain_weight` share of the statistics whatever the number of windows on each side (each share a plain
    mean over its tokens). Windows of a side with no share get weight 0.

    Args:
        general_tokens (`Sequence[int]`): tokens in each general window.
        domain_tokens (`Sequence[int]`): tokens in each domain window.
        domain_weight (`float`): the domain share, in [0, 1].
    """
    general_total, domain_total = sum(general_tokens), sum(domain_tokens)
    general = (1.0 - domain_weight) / general_total if general_total else 0.0
    domain = domain_weight / domain_total if domain_total else 0.0
    return [general] * len(general_tokens) + [domain] * len(domain_tokens)


class Hessian:
    """H = 2 sum_s c_s sum_t x x^T over the calibration tokens (fp32 on `device`; waits on `home` between batches).

    Args:
        d_in (`int`): input features.
        device (`torch.device`): where H is updated and used.
        home (`torch.device`, *optional*): where H is kept between batches (CPU with `offload_hessians`).
    """

    def __init__(self, d_in: int, device: torch.device, home: torch.device | None = None) -> None:
        self.device = device
        self.matrix = torch.zeros(d_in, d_in, dtype=torch.float32, device=home or device)
        self.num_tokens = 0
        self._factor: tuple[float, torch.Tensor, torch.Tensor] | None = None

    def add_batch(self, x: torch.Tensor, weight: float) -> None:
        matrix = self.matrix.to(self.device)  # the same tensor unless Hessians are offloaded
        x = x.reshape(-1, x.shape[-1]).to(device=self.device, dtype=torch.float32)
        for start in range(0, x.shape[1], GRAM_BLOCK):  # upper triangle (and full diagonal blocks) only
            matrix[start : start + GRAM_BLOCK, start:].addmm_(x[:, start : start + GRAM_BLOCK].T, x[:, start:], alpha=2.0 * weight)
        self.num_tokens += x.shape[0]
        self.matrix = matrix.to(self.matrix.device)

    def value(self) -> torch.Tensor:
        """H on the compute device (`matrix` holds its upper triangle; the lower one is mirrored from it)."""
        matrix = self.matrix.to(self.device)
        return torch.triu(matrix) + torch.triu(matrix, diagonal=1).T

    def inverse_factor(self, damp: float, timer: StageTimer | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """`(U, dead)`: the upper Cholesky factor of the damped H^-1 (dead inputs' diagonal set to 1) and the bool
        mask of dead inputs (H_jj = 0). Computed once per `damp` and kept: every method that needs U shares it.

        Raises:
            `DataError`: no calibration token reached the layer.
        """
        if self.num_tokens == 0:
            raise DataError("a target layer received no calibration tokens; check the calibration data.")
        if self._factor is None or self._factor[0] != damp:
            with (timer or StageTimer())("factorisation"):
                hessian, dead = prepare_hessian(self.value())
                self._factor = (damp, inverse_hessian_factor(hessian, damp), dead)
        return self._factor[1], self._factor[2]


class InputNorms:
    """sum_s c_s sum_t x_j^2 per input feature, `(d_in,)` fp32 on `device`."""

    @classmethod
    def from_hessian(cls, hessian: Hessian) -> "InputNorms":
        """The same quantity read off a Hessian's diagonal (H_jj / 2), for a method that needs both."""
        norms = cls(hessian.matrix.shape[0], hessian.device)
        norms.squares = hessian.value().diagonal() / 2
        norms.num_tokens = hessian.num_tokens
        return norms

    def __init__(self, d_in: int, device: torch.device) -> None:
        self.device = device
        self.squares = torch.zeros(d_in, dtype=torch.float32, device=device)
        self.num_tokens = 0

    def add_batch(self, x: torch.Tensor, weight: float) -> None:
        x = x.reshape(-1, x.shape[-1]).to(device=self.device, dtype=torch.float32)
        self.squares.add_(torch.linalg.vector_norm(x, dim=0).square_(), alpha=weight)
        self.num_tokens += x.shape[0]

    def value(self) -> torch.Tensor:
        return self.squares
