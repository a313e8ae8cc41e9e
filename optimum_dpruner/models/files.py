"""Strict readers of model files: a truncated or corrupt safetensors file is named in a `CheckpointError`."""

from __future__ import annotations

from contextlib import contextmanager

from ..errors import CheckpointError, describe_error

__all__ = ["open_safetensors"]


@contextmanager
def open_safetensors(path: str):
    """`safetensors.safe_open(path)`; `CheckpointError` naming the file when it is truncated or corrupt."""
    from safetensors import SafetensorError, safe_open

    try:
        handle = safe_open(path, framework="pt")
    except SafetensorError as e:
        raise CheckpointError(f"{path!r} is truncated or corrupt ({describe_error(e)}); download or save it again.") from None
    with handle as f:
        yield f
