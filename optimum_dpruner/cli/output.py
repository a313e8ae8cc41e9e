"""What a command writes besides its results: progress messages and warnings on stderr, one line each, and the
switch that silences the progress bars of the libraries it calls. Results go to stdout (tables: `optimum_dpruner.tables`).
"""

from __future__ import annotations

import sys

from .exits import one_line

__all__ = ["status", "one_line_warning", "disable_progress_bars"]


def status(message: str) -> None:
    """A progress message on stderr (stdout carries the results)."""
    sys.stderr.write(f"[dpruner] {message}\n")
    sys.stderr.flush()


def one_line_warning(message, category, filename, lineno, line=None) -> str:
    """A `warnings.formatwarning` that prints `Category: message` on one line, without the source line."""
    return f"{category.__name__}: {one_line(message)}\n"


def disable_progress_bars() -> None:
    """Silence the progress bars of transformers and huggingface_hub too (for `--no-progress`)."""
    from huggingface_hub.utils import disable_progress_bars as disable_hub_bars
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    disable_hub_bars()
