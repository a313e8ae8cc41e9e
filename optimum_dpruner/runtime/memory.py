"""Memory of a run: the process's resident set, and a monitor that times a stage and samples its peak memory."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator

import torch

__all__ = ["StageMonitor", "current_rss"]


def current_rss() -> int:
    """Resident set size of this process in bytes (Linux `/proc`; 0 where unavailable)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


class StageMonitor:
    """Times a stage and records its peak memory: process RSS sampled every 20 ms, and on CUDA the peak allocated."""

    def __init__(self, interval: float = 0.02) -> None:
        self.interval = interval

    @contextlib.contextmanager
    def measure(self, report, stage: str) -> Iterator[None]:
        peak = [current_rss()]
        stop = threading.Event()

        def sample() -> None:
            while not stop.wait(self.interval):
                peak[0] = max(peak[0], current_rss())

        thread = threading.Thread(target=sample, daemon=True)
        thread.start()
        cuda = torch.cuda.is_available()
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        try:
            yield
        finally:
            elapsed = time.perf_counter() - start
            stop.set()
            thread.join()
            peak[0] = max(peak[0], current_rss())
            report.stage_seconds[stage] = report.stage_seconds.get(stage, 0.0) + elapsed
            report.peak_rss_bytes[stage] = max(report.peak_rss_bytes.get(stage, 0), peak[0])
            if cuda:
                report.peak_cuda_bytes[stage] = torch.cuda.max_memory_allocated()
