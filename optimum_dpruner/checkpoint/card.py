"""Model card (`README.md`) and per-layer sparsity plot for a saved pruned model.

The card is built with huggingface_hub's `ModelCard`/`ModelCardData`: metadata for the Hub (base model, tags,
datasets, licence inherited from the base model) and a body with the method, calibration, a per-layer sparsity
table and plot, the evaluation when measured, and what sparsity does and does not buy. The plot is a small PNG
written with the standard library (no plotting dependency).
"""

from __future__ import annotations

import logging
import os
import re
import struct
import zlib
from typing import Any

from ..models.hub_ids import is_hub_id

__all__ = [
    "PLOT_NAME",
    "build_model_card",
    "write_model_card",
    "write_sparsity_plot",
    "per_layer_table",
    "resolve_base_model",
]

logger = logging.getLogger(__name__)

PLOT_NAME = "sparsity_per_layer.png"
_LAYER_NAME = re.compile(r"^(?P<prefix>.*?)\.(?P<index>\d+)\.(?P<kind>.+)$")
# The embedded default model is converted from GGUF into a local folder; its card facts are known.
_DEFAULT_BASE = ("HuggingFaceTB/SmolLM2-135M-Instruct", "apache-2.0")
_BUILTIN_SOURCES = {
    "general": "English Wikipedia articles (bundled sample)",
    "medical": "PubMed abstracts (bundled sample)",
    "legal": "CaseHOLD holdings (bundled sample)",
}
_COLOURS = [  # (name, RGB): one per matrix kind, in order of appearance
    ("blue", (31, 119, 180)),
    ("orange", (255, 127, 14)),
    ("green", (44, 160, 44)),
    ("red", (214, 39, 40)),
    ("purple", (148, 103, 189)),
    ("brown", (140, 86, 75)),
    ("pink", (227, 119, 194)),
    ("grey", (127, 127, 127)),
    ("olive", (188, 189, 34)),
    ("cyan", (23, 190, 207)),
]
_DIGITS = {  # 3x5 bitmap digits for the axis labels
    "0": ("111", "101", "101", "101", "111"),
    "1": ("010", "110", "010", "010", "111"),
    "2": ("111", "001", "111", "100", "111"),
    "3": ("111", "001", "111", "001", "111"),
    "4": ("101", "101", "111", "001", "001"),
    "5": ("111", "100", "111", "001", "111"),
    "6": ("111", "100", "111", "101", "111"),
    "7": ("111", "001", "001", "001", "001"),
    "8": ("111", "101", "111", "101", "111"),
    "9": ("111", "101", "111", "001", "111"),
}


# ---------------------------------------------------------------------------------------------- per-layer table
def per_layer_table(per_matrix: dict[str, float]) -> tuple[list[str], list[tuple[str, dict[str, float]]]]:
    """Group per-matrix sparsity by decoder layer.

    Args:
        per_matrix (`dict[str, float]`): sparsity per module name (e.g. `"model.layers.3.mlp.up_proj"`).

    Returns:
        `tuple`: the matrix kinds in order of appearance (e.g. `["self_attn.q_proj", ...]`) and one
        `(layer, {kind: sparsity})` row per layer, in layer order.
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


def _markdown_table(per_matrix: dict[str, float]) -> str:
    kinds, rows = per_layer_table(per_matrix)
    lines = [
        "| layer | " + " | ".join(f"`{k}`" for k in kinds) + " | mean |",
        "|---:|" + "---:|" * (len(kinds) + 1),
    ]
    for layer, values in rows:
        cells = [f"{values[k]:.3f}" if k in values else "-" for k in kinds]
        mean = sum(values.values()) / len(values)
        lines.append(f"| {layer} | " + " | ".join(cells) + f" | {mean:.3f} |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- PNG plot
class _Canvas:
    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.pixels = bytearray(b"\xff" * (width * height * 3))

    def rect(self, x0: int, y0: int, x1: int, y1: int, colour: tuple[int, int, int]) -> None:
        x0, x1 = max(0, x0), min(self.width, x1)
        if x1 <= x0:
            return
        row = bytes(colour) * (x1 - x0)
        for y in range(max(0, y0), min(self.height, y1)):
            start = (y * self.width + x0) * 3
            self.pixels[start : start + len(row)] = row

    def text(self, x: int, y: int, digits: str, colour: tuple[int, int, int], scale: int = 2) -> None:
        for i, char in enumerate(digits):
            for dy, line in enumerate(_DIGITS[char]):
                for dx, bit in enumerate(line):
                    if bit == "1":
                        px, py = x + (i * 4 + dx) * scale, y + dy * scale
                        self.rect(px, py, px + scale, py + scale, colour)

    def png(self) -> bytes:
        stride = self.width * 3
        raw = b"".join(b"\x00" + bytes(self.pixels[y * stride : (y + 1) * stride]) for y in range(self.height))

        def chunk(kind: bytes, data: bytes) -> bytes:
            return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

        header = struct.pack(">IIBBBBB", self.width, self.height, 8, 2, 0, 0, 0)  # 8-bit RGB
        return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def write_sparsity_plot(per_matrix: dict[str, float], path: str | os.PathLike, target: float | None = None) -> str:
    """Draw per-layer sparsity as grouped bars (one colour per matrix kind) and write it as a PNG.

    The y axis runs from 0 % (bottom) to 100 % (top) with grid lines every 25 %, labelled in percent; layer
    indices are written below every few groups. A dark red dashed line marks `target`.

    Args:
        per_matrix (`dict[str, float]`): sparsity per module name.
        path (`str`): the PNG file to write.
        target (`float`, *optional*): the requested sparsity, drawn as a dashed line.

    Returns:
        `str`: the path written.
    """
    kinds, rows = per_layer_table(per_matrix)
    bar = max(2, min(8, 720 // max(1, len(rows) * len(kinds))))
    group = bar * len(kinds) + max(3, bar)
    left, top, plot_h, bottom = 44, 12, 200, 24
    width, height = left + group * len(rows) + 12, top + plot_h + bottom
    canvas = _Canvas(width, height)
    ink, grid = (40, 40, 40), (215, 215, 215)

    def y_of(value: float) -> int:
        return top + plot_h - int(round(min(max(value, 0.0), 1.0) * plot_h))

    for percent in (0, 25, 50, 75, 100):
        y = y_of(percent / 100)
        canvas.rect(left, y, width - 8, y + 1, grid)
        label = str(percent)
        canvas.text(left - 6 - len(label) * 8, y - 5, label, ink)
    for i, (layer, values) in enumerate(rows):
        x = left + i * group + max(3, bar) // 2
        for k, kind in enumerate(kinds):
            if kind in values:
                canvas.rect(x + k * bar, y_of(values[kind]), x + (k + 1) * bar, top + plot_h, _COLOURS[k % len(_COLOURS)][1])
        step = max(1, -(-len(rows) * 24 // (width - left)))
        if layer.isdigit() and i % step == 0:
            canvas.text(x, top + plot_h + 6, layer, ink)
    canvas.rect(left - 1, top, left, top + plot_h + 1, ink)  # y axis
    canvas.rect(left, top + plot_h, width - 8, top + plot_h + 1, ink)  # x axis
    if target is not None:
        y = y_of(target)
        for x in range(left, width - 8, 8):
            canvas.rect(x, y, x + 5, y + 1, (139, 0, 0))
    with open(path, "wb") as f:
        f.write(canvas.png())
    return os.fspath(path)


# ---------------------------------------------------------------------------------------------- card
def _card_metadata_of(source: str) -> dict[str, Any]:
    """Metadata of the card of a local folder or hub id (best effort, `{}` when unknown).

    Looks at the folder, then the local Hub cache, then asks the Hub once (5 s timeout, no retries; skipped when
    `HF_HUB_OFFLINE=1`).
    """
    from huggingface_hub import HfApi, ModelCard, constants, try_to_load_from_cache

    try:
        readme = os.path.join(source, "README.md")
        if os.path.isfile(readme):
            return ModelCard.load(readme).data.to_dict()
        if not is_hub_id(source):
            return {}
        cached = try_to_load_from_cache(source, "README.md")
        if isinstance(cached, str):
            return ModelCard.load(cached).data.to_dict()
        if not constants.HF_HUB_OFFLINE:
            card_data = HfApi().model_info(source, timeout=5).card_data
            return card_data.to_dict() if card_data is not None else {}
    except Exception as e:  # network, missing card, malformed YAML: the card is best effort
        logger.info("Could not read the model card of %s (%s); the licence is left unset.", source, type(e).__name__)
    return {}


def resolve_base_model(model, base_model: str | None = None, license: str | None = None) -> dict[str, Any]:
    """Find the hub id, licence and language of the model that was pruned.

    Args:
        model (`PreTrainedModel`): the pruned model; its `name_or_path` points at the base model.
        base_model (`str`, *optional*): the hub id, when known better than `name_or_path`.
        license (`str`, *optional*): the licence, when known; else read from the base model's card.

    Returns:
        `dict`: `base_model`, `license` and `language` (each possibly `None`).
    """
    from ..models.default_model import default_model_path

    source = getattr(model, "name_or_path", "") or getattr(model.config, "_name_or_path", "") or ""
    source = os.fspath(source)
    known: dict[str, Any] = {}
    if source and os.path.isdir(source) and os.path.abspath(source) == os.path.abspath(default_model_path()):
        known = {"base_model": _DEFAULT_BASE[0], "license": _DEFAULT_BASE[1]}
    elif source:
        if is_hub_id(source):
            known["base_model"] = source
        meta = _card_metadata_of(source)
        known["license"] = meta.get("license")
        known["language"] = meta.get("language")
    return {
        "base_model": base_model or known.get("base_model"),
        "license": license or known.get("license"),
        "language": known.get("language"),
    }


def _dpruner_lines(cfg: dict) -> list[str]:
    """D-Pruner's recipe in one line: the library's default (reconstruction) or the paper's (masks from I alone)."""
    if cfg.get("method") != "dpruner":
        return []
    from ..configuration import DPrunerConfig
    from ..methods import reconstructs

    config = DPrunerConfig.from_dict(cfg, strict=False)  # the same defaults as the run that wrote it
    if config.dual_mask_score == "saliency_x_importance":
        mask = f"OBS saliency x (domain importance I / mean)^{config.importance_exponent}, chosen block by block"
    else:
        mask = "lowest domain importance I"
    general = config.general_importance
    paper = f"; general stage `{general}`, lambda {config.lambda_reg}" if general != "none" else ""
    update = "OBS update of the surviving weights on the mixed Hessian" if reconstructs(config) else "no weight update"
    return [f"- D-Pruner: mask = {mask}; {update}{paper}"]


def _calibration_lines(side_car: dict[str, Any]) -> list[str]:
    cfg = side_car.get("config", {})
    calibration = side_car.get("calibration") or {}
    if not calibration:
        return [f"- Calibration data: none ({cfg.get('method')} pruning uses no data). Seed: {cfg.get('seed')}."]
    lines = []
    for role, info in calibration.items():
        source = info.get("source", "?")
        if isinstance(source, str) and source.startswith("builtin:"):
            source = f"`{source}` ({_BUILTIN_SOURCES.get(source.split(':', 1)[1], 'bundled sample')})"
        elif isinstance(source, str):
            source = f"`{source}`"
        share = info.get("statistics_share")
        lines.append(
            f"- {role} calibration: {source}, {info.get('num_samples')} sequences x {info.get('seq_len')} tokens "
            f"(sha256 of the token ids `{str(info.get('sha256', ''))[:16]}...`)"
            + (f"; {share:.0%} of the mixed calibration statistics (`domain_weight`)" if share is not None else "")
            + (f"; each sequence starts with the BOS token (id {info['bos_token_id']})" if info.get("bos_token_id") is not None else "")
        )
    lines.append(f"- Seed: {cfg.get('seed')}")
    return lines


def _evaluation_table(evaluation: dict[str, dict[str, float]]) -> str:
    lines = ["| data | dense ppl | pruned ppl | change |", "|---|---:|---:|---:|"]
    for label, values in evaluation.items():
        dense, pruned = values.get("dense"), values.get("pruned")
        change = f"{(pruned / dense - 1) * 100:+.1f} %" if dense and pruned is not None else "-"
        fmt = lambda v: f"{v:.2f}" if v is not None else "-"  # noqa: E731
        lines.append(f"| {label} | {fmt(dense)} | {fmt(pruned)} | {change} |")
    return "\n".join(lines)


def build_model_card(
    metadata: dict[str, Any],
    side_car: dict[str, Any],
    *,
    base_model: str | None = None,
    license: str | None = None,
    language: str | list[str] | None = None,
    evaluation: dict[str, dict[str, float]] | None = None,
    model_name: str | None = None,
    plot_file: str | None = PLOT_NAME,
):
    """Build the model card of a pruned model.

    Args:
        metadata (`dict`): the `dpruner_sparsity` block of `config.json`.
        side_car (`dict`): the content of `dpruner_config.json` (config, calibration fingerprints, versions).
        base_model (`str`, *optional*): hub id of the unpruned model.
        license (`str`, *optional*): the base model's licence.
        language (`str` or `list[str]`, *optional*): the base model's language(s).
        evaluation (`dict[str, dict[str, float]]`, *optional*): `{set: {"dense": ppl, "pruned": ppl}}`.
        model_name (`str`, *optional*): title of the card.
        plot_file (`str`, *optional*, defaults to `"sparsity_per_layer.png"`): the plot to show, relative to
            the card; `None` for no plot.

    Returns:
        `huggingface_hub.ModelCard`: the card (`card.save(path)` writes `README.md`).
    """
    from huggingface_hub import ModelCard, ModelCardData

    method, pattern = metadata["method"], metadata["pattern"]
    compressed = metadata.get("format") == "bitmask"
    tags = list(dict.fromkeys(["pruned", "sparse", "dpruner", pattern, method, "optimum"]))
    datasets = [
        info["source"]
        for info in (side_car.get("calibration") or {}).values()
        if isinstance(info.get("source"), str) and is_hub_id(info["source"])
    ]
    data = ModelCardData(
        base_model=base_model,
        datasets=sorted(set(datasets)) or None,
        language=language,
        library_name="optimum-dpruner" if compressed else "transformers",
        license=license,
        model_name=model_name,
        pipeline_tag="text-generation",
        tags=tags,
    )
    title = model_name or (f"{base_model.split('/')[-1]}-{method}-{pattern}" if base_model else "Pruned model")
    base_text = f"[{base_model}](https://huggingface.co/{base_model})" if base_model else "the base model"
    cfg = side_car.get("config", {})
    per_matrix = metadata.get("per_matrix_sparsity", {})
    kinds, _ = per_layer_table(per_matrix)
    legend = ", ".join(f"`{k}` {_COLOURS[i % len(_COLOURS)][0]}" for i, k in enumerate(kinds))
    versions = ", ".join(f"{k} {v}" for k, v in sorted((side_car.get("library_versions") or {}).items()))
    load = (
        "from optimum_dpruner import load_pretrained\n\nmodel = load_pretrained(\"<this repo>\")  # a dense transformers model"
        if compressed
        else "from transformers import AutoModelForCausalLM\n\nmodel = AutoModelForCausalLM.from_pretrained(\"<this repo>\")"
    )
    body = [
        f"# {title}",
        "",
        f"This model is {base_text} with {metadata['global_sparsity']:.1%} of the weights of its target matrices set "
        f"to zero ({pattern} sparsity), pruned by the `{method}` method of optimum-dpruner. "
        + ("Embeddings, norms and the language-model head are not pruned; " if not cfg.get("targets") else "")
        + f"over all parameters the sparsity is {metadata.get('model_sparsity', 0):.1%}.",
        "",
        "## Method",
        "",
        f"- Method: `{method}`; pattern: `{pattern}`; comparison group: `{metadata.get('granularity') or 'method default'}`",
        f"- Target sparsity: {metadata.get('target_sparsity')}; achieved on the {len(per_matrix)} target matrices: "
        f"{metadata['global_sparsity']:.4f}",
        f"- Targets: {cfg.get('targets') or 'every nn.Linear inside the decoder blocks'}; ignored: {cfg.get('ignore') or 'none'}",
        *_dpruner_lines(cfg),
        *_calibration_lines(side_car),
        f"- Libraries: {versions}" if versions else "",
        "",
        "The full configuration, the library versions and a fingerprint of each calibration set are in "
        "`dpruner_config.json`; the sparsity metadata is under the `dpruner_sparsity` key of `config.json`.",
        "",
        "## Sparsity per layer",
        "",
    ]
    if plot_file:
        body += [
            f"![Sparsity of each target matrix per decoder layer]({plot_file})",
            "",
            f"Bars, per layer from left to right: {legend}. The y axis is the sparsity in percent; the dashed line is "
            "the target.",
            "",
        ]
    body += [_markdown_table(per_matrix), ""]
    if evaluation:
        body += ["## Evaluation", "", "Perplexity (lower is better), measured by optimum-dpruner:", "", _evaluation_table(evaluation), ""]
    storage = (
        "This checkpoint uses optimum-dpruner's compressed format (a bitmask and the kept values for each target "
        "matrix): it is smaller on disk, but plain transformers cannot read it; load it with "
        "`optimum_dpruner.load_pretrained`, which rebuilds the dense model."
        if compressed
        else "The zeros are stored in place: this is an ordinary dense checkpoint, as large as the base model."
    )
    speed = (
        "A 2:4 pattern can be accelerated on Ampere or newer GPUs with `torch.sparse.to_sparse_semi_structured` "
        "(fp16/bf16/int8), which this checkpoint does not do for you."
        if pattern == "2:4"
        else "Only a semi-structured pattern such as 2:4 can be accelerated, on Ampere or newer GPUs with "
        "`torch.sparse.to_sparse_semi_structured`."
    )
    body += [
        "## Speed and size",
        "",
        f"{storage} **Unstructured sparsity alone gives no speed-up and no memory saving**: transformers, vLLM and "
        f"other dense runtimes run this model exactly as fast, and in as much memory, as the dense one. {speed}",
        "",
    ]
    body += [
        "## Usage",
        "",
        "```python",
        load,
        "```",
        "",
        "Fine-tuning or merging LoRA adapters fills the zeros back in. Check a model or folder against its metadata with:",
        "",
        "```python",
        "from optimum_dpruner import verify_sparsity",
        "",
        "print(verify_sparsity(model).table())",
        "```",
        "",
    ]
    content = f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(body)
    return ModelCard(content)


def write_model_card(
    folder: str | os.PathLike,
    model,
    metadata: dict[str, Any],
    side_car: dict[str, Any],
    *,
    base_model: str | None = None,
    license: str | None = None,
    evaluation: dict[str, dict[str, float]] | None = None,
    model_name: str | None = None,
) -> dict[str, Any]:
    """Write `README.md` and the per-layer plot into `folder`.

    Args:
        folder (`str`): the (temporary) output folder.
        model (`PreTrainedModel`): the pruned model (to find the base model and its licence).
        metadata (`dict`): the `dpruner_sparsity` block.
        side_car (`dict`): the `dpruner_config.json` content.
        base_model (`str`, *optional*), license (`str`, *optional*): override what is read from the base model.
        evaluation (`dict`, *optional*): `{set: {"dense": ppl, "pruned": ppl}}`.
        model_name (`str`, *optional*): title of the card.

    Returns:
        `dict`: the resolved `base_model`, `license` and `language`.
    """
    folder = os.fspath(folder)
    info = resolve_base_model(model, base_model, license)
    write_sparsity_plot(metadata.get("per_matrix_sparsity", {}), os.path.join(folder, PLOT_NAME), metadata.get("target_sparsity"))
    card = build_model_card(metadata, side_car, evaluation=evaluation, model_name=model_name, plot_file=PLOT_NAME, **info)
    card.save(os.path.join(folder, "README.md"))
    return info
