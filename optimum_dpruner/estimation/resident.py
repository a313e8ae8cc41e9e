"""How much of this process's memory a model's parameters hold now (Linux `/proc/self/smaps`), and the process's
resident size without them: the runtime a CPU run's peaks start from."""

from __future__ import annotations

import bisect

from torch import nn

__all__ = ["resident_parameter_bytes", "runtime_rss"]


def _file_mappings() -> list[tuple[int, int, int]]:
    """(start, end, resident bytes) of this process's file-backed memory mappings, sorted (Linux `smaps`)."""
    mappings: list[tuple[int, int, int]] = []
    try:
        with open("/proc/self/smaps") as f:
            current = None
            for line in f:
                head = line.split(None, 6)
                if "-" in head[0] and not head[0].endswith(":"):
                    path = head[5].strip() if len(head) > 5 else ""
                    start, end = (int(x, 16) for x in head[0].split("-"))
                    current = (start, end) if path.startswith("/") else None
                elif current is not None and head[0] == "Rss:":
                    mappings.append((*current, int(head[1]) * 1024))
                    current = None
    except OSError:
        return []
    return sorted(mappings)


def resident_parameter_bytes(model: nn.Module) -> int:
    """Bytes of `model`'s CPU parameters that are resident in this process's memory now.

    A parameter copied into process memory counts in full. One that is a view of a memory-mapped file (how
    transformers loads a safetensors checkpoint in its stored dtype) counts only the pages of its mapping read so
    far; the run reads them all, so a run's peak holds the whole model either way.
    """
    mappings = _file_mappings()
    starts = [m[0] for m in mappings]
    copied, touched = 0, set()
    for p in model.parameters():
        if p.device.type != "cpu":
            continue
        i = bisect.bisect_right(starts, p.data_ptr()) - 1
        if i >= 0 and p.data_ptr() < mappings[i][1]:
            touched.add(i)
        else:
            copied += p.numel() * p.element_size()
    return copied + sum(mappings[i][2] for i in touched)


def runtime_rss(model: nn.Module | None = None) -> int:
    """This process's resident size without `model`'s parameters, once the libraries a run loads are imported
    (datasets reads the calibration data; importing it here counts its share, which `prune()` would add on top
    of a bare runtime)."""
    import datasets  # noqa: F401

    from ..runtime.memory import current_rss

    return max(current_rss() - (resident_parameter_bytes(model) if model is not None else 0), 0)
