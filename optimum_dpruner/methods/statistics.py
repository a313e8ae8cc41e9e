"""Per-input statistics of a target linear layer, gathered from its inputs during the calibration pass.

One statistic serves every target linear that reads the same input tensor (q/k/v, gate/up), see
`optimum_dpruner.blockwise.groups`. Each calibration window `s` enters with a per-token weight `c_s`; the
pipeline sets the weights so that they sum to 1 over all tokens of all windows, each calibration set receiving its
share (`domain_weight`). With a single set, `c_s = 1 / (number of tokens)`: plain means.

- `Hessian`: H = 2 sum_s c_s sum_t x x^T, `(d_in, d_in)` fp32 (SparseGPT, OBS reconstruction);
- `InputNorms`: sum_s c_s sum_t x_j^2 per input feature j, `(d_in,)` fp32 (Wanda's ||X_j||^2 up to a constant).
"""

from __future__ import annotations

import torch

__all__ = ["Hessian", "InputNorms"]


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

    def add_batch(self, x: torch.Tensor, weight: float) -> None:
        matrix = self.matrix.to(self.device)  # the same tensor unless Hessians are offloaded
        x = x.reshape(-1, x.shape[-1]).to(device=self.device, dtype=torch.float32)
        matrix.addmm_(x.T, x, alpha=2.0 * weight)
        self.num_tokens += x.shape[0]
        self.matrix = matrix.to(self.matrix.device)

    def value(self) -> torch.Tensor:
        """H on the compute device."""
        return self.matrix.to(self.device)


class InputNorms:
    """sum_s c_s sum_t x_j^2 per input feature, `(d_in,)` fp32 on `device`."""

    def __init__(self, d_in: int, device: torch.device, home: torch.device | None = None) -> None:
        self.device = device
        self.squares = torch.zeros(d_in, dtype=torch.float32, device=device)
        self.num_tokens = 0

    def add_batch(self, x: torch.Tensor, weight: float) -> None:
        x = x.reshape(-1, x.shape[-1]).to(device=self.device, dtype=torch.float32)
        self.squares.add_(torch.linalg.vector_norm(x, dim=0).square_(), alpha=weight)
        self.num_tokens += x.shape[0]

    def value(self) -> torch.Tensor:
        return self.squares
