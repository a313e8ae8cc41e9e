"""The per-layer view of a pruned model's sparsity: target matrices grouped by decoder layer, and their bar plot.

The plot is drawn with matplotlib when it is installed (`pip install "optimum-dpruner[plots]"`); without it no
picture is written and the model card shows the same numbers as a table only. matplotlib is used through its
object API with the Agg canvas, so saving a model never changes the caller's pyplot state or backend.
"""

from __future__ import annotations

import logging
import os
import re

__all__ = ["PLOT_NAME", "per_layer_table", "write_sparsity_plot"]

logger = logging.getLogger(__name__)

PLOT_NAME = "sparsity_per_layer.png"
_LAYER_NAME = re.compile(r"^(?P<prefix>.*?)\.(?P<index>\d+)\.(?P<kind>.+)$")


def per_layer_table(per_matrix: dict[str, float]) -> tuple[list[str], list[tuple[str, dict[str, float]]]]:
    """Group per-matrix sparsity by decoder layer.

    Args:
        per_matrix (`dict[str, float]`): sparsity per module name (e.g. `"model.layers.3.mlp.up_proj"`).

    Returns:
        `tuple`: the matrix kinds in order of appearance (e.g. `["self_attn.q_proj", ...]`) and one
        `(layer, {kind: sparsity})` row per layer, in layer order (names without a layer index come last, as `"-"`).
    """
    kinds: list[str] = []
    rows: dict[str, dict[str, float]] = {}
    for name, value in per_matrix.items():
        match = _LAYER_NAME.match(name)
        layer, kind = (match["index"], match["kind"]) if match else ("-", name)
        if kind not in kinds:
            kinds.append(kind)
        rows.setdefault(layer, {})[kind] = value
    order = sorted(rows, key=lambda k: (not k.isdigit(), int(k) if k.isdigit() else 0, k))
    return kinds, [(layer, rows[layer]) for layer in order]


def write_sparsity_plot(
    per_matrix: dict[str, float], path: str | os.PathLike, target: float | None = None
) -> str | None:
    """Draw per-layer sparsity as grouped bars (one colour per matrix kind, with a legend) and write it as a PNG.

    The y axis is the sparsity in percent (0 to 100); a dashed line marks `target`.

    Args:
        per_matrix (`dict[str, float]`): sparsity per module name.
        path (`str`): the PNG file to write.
        target (`float`, *optional*): the requested sparsity, drawn as a dashed line.

    Returns:
        `str` or `None`: the path written, or `None` when matplotlib is not installed (nothing is written).
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        logger.info("matplotlib is not installed, so no sparsity plot is drawn (pip install 'optimum-dpruner[plots]').")
        return None
    kinds, rows = per_layer_table(per_matrix)
    figure = Figure(figsize=(max(6.0, min(16.0, 2.0 + 0.35 * len(rows))), 3.6), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    width = 0.8 / max(1, len(kinds))
    for k, kind in enumerate(kinds):
        xs = [i + (k - (len(kinds) - 1) / 2) * width for i, (_, values) in enumerate(rows) if kind in values]
        heights = [100 * values[kind] for _, values in rows if kind in values]
        axes.bar(xs, heights, width=width, label=kind, color=f"C{k % 10}")
    if target is not None:
        axes.axhline(100 * target, color="darkred", linestyle="--", linewidth=1, label="target")
    axes.set_xticks(range(len(rows)), [layer for layer, _ in rows], fontsize=7)
    axes.set_xlim(-0.6, len(rows) - 0.4)
    axes.set_ylim(0, 100)
    axes.set_xlabel("decoder layer")
    axes.set_ylabel("sparsity (%)")
    axes.grid(axis="y", color="0.85")
    axes.set_axisbelow(True)
    axes.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)  # beside the bars, not on them
    figure.savefig(os.fspath(path), format="png")
    return os.fspath(path)
