"""The throughputs an estimate divides its operation counts by, probed on the execution device in a fraction of a
second: a matrix product, an element-wise pass and a round trip of small kernels."""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from ..runtime.offload import resolve_device

__all__ = ["Rates", "measure_rates"]


@dataclass(frozen=True)
class Rates:
    """Throughputs of the execution device: fp32 matmul flop/s, element-wise element/s, seconds per small op."""

    matmul_flops: float
    elementwise: float
    op_seconds: float


def measure_rates(device: torch.device | str = "cpu") -> Rates:
    """Time a 512x1024x1024 fp32 matrix product, an element-wise pass over 4M elements and 200 tiny ops."""
    device = resolve_device(device)

    def best(fn, repeat: int = 3) -> float:
        fn()
        times = []
        for _ in range(repeat):
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            start = time.perf_counter()
            fn()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            times.append(time.perf_counter() - start)
        return min(times)

    a = torch.randn(512, 1024, device=device)
    b = torch.randn(1024, 1024, device=device)
    matmul = best(lambda: a @ b)
    x = torch.randn(4 * 2**20, device=device)
    elementwise = best(lambda: x.mul(1.0001))
    tiny = torch.zeros(64, device=device)

    def ops() -> None:
        for _ in range(200):
            tiny.add_(1.0)

    op = best(ops) / 200
    return Rates(2 * 512 * 1024 * 1024 / matmul, x.numel() / elementwise, op)
