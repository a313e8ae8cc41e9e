"""The model card (`README.md`) of a saved pruned model.

Built with huggingface_hub's `ModelCard`/`ModelCardData`: metadata for the Hub (base model, tags, datasets,
licence inherited from the base model) and a body with the method, calibration, a per-layer sparsity table (and
plot, when `plot` could draw one), the evaluation when measured, and what sparsity does and does not buy. What the
base model is comes from `base_model`, the only part that may ask the Hub.
"""

from __future__ import annotations

import os
from typing import Any

from ..models.hub_ids import is_hub_id
from .base_model import resolve_base_model
from .plot import PLOT_NAME, per_layer_table, write_sparsity_plot

__all__ = ["PLOT_NAME", "build_model_card", "write_model_card"]

_BUILTIN_SOURCES = {
    "general": "English Wikipedia articles (bundled sample)",
    "medical": "PubMed abstracts (bundled sample)",
    "legal": "CaseHOLD holdings (bundled sample)",
}


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


def _dpruner_lines(cfg: dict) -> list[str]:
    """D-Pruner's recipe in one line: the library's default (reconstruction) or the paper's (masks from I alone)."""
    if cfg.get("method") != "dpruner":
        return []
    from ..configuration import DPrunerConfig
    from ..methods import reconstructs

    config = DPrunerConfig.from_dict(cfg, strict=False)  # the same defaults as the run that wrote it
    if config.mask_score == "saliency_x_importance":
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
            the card; `None` for none (the card then links no picture).

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
            "One bar per target matrix of each decoder layer (legend in the plot); the y axis is the sparsity in "
            "percent and the dashed line the target.",
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
    """Write `README.md` into `folder`, and the per-layer plot beside it when matplotlib is installed.

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
    plot = write_sparsity_plot(
        metadata.get("per_matrix_sparsity", {}), os.path.join(folder, PLOT_NAME), metadata.get("target_sparsity")
    )
    card = build_model_card(
        metadata, side_car, evaluation=evaluation, model_name=model_name, plot_file=PLOT_NAME if plot else None, **info
    )
    card.save(os.path.join(folder, "README.md"))
    return info
