"""Saving pruned models: plain transformers checkpoints with sparsity metadata, written atomically.

The folder holds what `AutoModelForCausalLM.from_pretrained` needs (safetensors weights, `config.json`,
tokenizer files) plus `dpruner_config.json`, a model card (`README.md`) and a per-layer sparsity plot. Sparsity
metadata sits under the top-level `config.json` key `dpruner_sparsity`, which transformers keeps through a
load/save round trip and other loaders ignore (never under `quantization_config`, which makes loaders look for a
quantizer).

With `compressed=True` the target matrices are stored as a bitmask (1 bit per weight, `True` where the weight is
kept) plus the kept values, in files named `dpruner-compressed*.safetensors` instead of `model*.safetensors`.
Plain transformers then refuses the folder (no `model.safetensors`) rather than loading random weights;
`load_pretrained` restores an ordinary dense model from it.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from typing import Any

import torch

from ..configuration import CONFIG_NAME, DPrunerConfig
from ..errors import ConfigError
from .compression import compress_folder, compressed_files, read_weights
from .folders import MANIFEST_KEY, check_output_folder, replace_folder, signals_deferred
from ..models.hub_ids import is_hub_id
from .metadata import FORMAT_BITMASK, FORMAT_DENSE, SPARSITY_KEY, library_versions, sparsity_metadata
from .recovery_card import append_recovery_section, recovery_summary

__all__ = ["save_pruned", "load_pretrained"]

logger = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------- save / load
def _rewrite_json(path: str, update) -> None:
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    update(data)
    with open(path, "w", encoding="utf-8") as f:
        f.write(json.dumps(data, indent=2, sort_keys=True) + "\n")


def save_pruned(
    save_directory: str | os.PathLike,
    model,
    tokenizer,
    config: DPrunerConfig,
    report,
    overwrite: bool = False,
    max_shard_size: str | int = "5GB",
    *,
    compressed: bool = False,
    model_card: bool = True,
    base_model: str | None = None,
    license: str | None = None,
    evaluation: dict[str, dict[str, float]] | None = None,
    recovery: dict[str, Any] | None = None,
    samples: list[dict[str, Any]] | None = None,
) -> str:
    """Write a pruned model to `save_directory` atomically (temporary sibling folder, then rename).

    A process killed while saving leaves only a hidden `.<name>.tmp-*` folder beside the target, never a folder at
    the target path. With `overwrite=True` the old folder is swapped out only once the new one is complete, and
    only if it is empty or a checkpoint this library wrote with nothing else in it (never the current directory,
    a parent of it, or the folder the model was loaded from; see `optimum_dpruner.checkpoint.folders`). Whether the folder
    can be written, and its disk has room for the weights, is checked before anything is written.

    Args:
        save_directory (`str`): the output folder. It must not exist unless `overwrite=True`.
        model (`PreTrainedModel`): the pruned model.
        tokenizer (*optional*): saved beside it when given.
        config (`DPrunerConfig`): the options used.
        report (`PruneReport`): what the run achieved (sparsity, calibration fingerprints).
        overwrite (`bool`, *optional*, defaults to `False`): replace an existing folder written by this library.
        max_shard_size (`str` or `int`, *optional*, defaults to `"5GB"`): passed to `save_pretrained`.
        compressed (`bool`, *optional*, defaults to `False`): store target matrices as bitmask + values (smaller on
            disk; load with `optimum_dpruner.load_pretrained`, not with plain transformers).
        model_card (`bool`, *optional*, defaults to `True`): write `README.md` and the per-layer sparsity plot.
        base_model (`str`, *optional*): hub id of the unpruned model for the card; guessed from the model otherwise.
        license (`str`, *optional*): licence for the card; read from the base model's card otherwise.
        evaluation (`dict[str, dict[str, float]]`, *optional*): perplexities for the card,
            `{set name: {"dense": ppl, "pruned": ppl}}`; defaults to `report.extra["evaluation"]` when present.
        recovery (`dict`, *optional*): what a recovery run after the pruning did (`RecoveryResult.recovery_record`):
            stored under `"recovery"` in `dpruner_config.json`, summarised in the sparsity metadata and the card.
        samples (`list[dict]`, *optional*): greedy samples of the model's text for the card, each `{"prompt",
            "continuation", "max_new_tokens"}` (`save_pretrained(sample_prompt=...)` generates one).

    Returns:
        `str`: the folder written.

    Raises:
        `ConfigError`: `save_directory` exists and `overwrite` is `False`, may not be replaced, or cannot be written.
    """
    target = check_output_folder(
        save_directory, overwrite, protected=_model_sources(model), needed_bytes=_parameter_bytes(model)
    )
    parent = os.path.dirname(target)
    os.makedirs(parent, exist_ok=True)
    tmp = None
    try:
        with signals_deferred():  # a Ctrl-C while the folder is made lands after `tmp` names it, so it is removed
            tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(target)}.tmp-", dir=parent)
        metadata = sparsity_metadata(report, config)
        if recovery is not None:
            metadata["recovery"] = recovery_summary(recovery)
        setattr(model.config, SPARSITY_KEY, metadata)
        model.save_pretrained(tmp, max_shard_size=max_shard_size)
        if compressed:
            files = compress_folder(tmp, report.matrices)
            metadata = {**metadata, "format": FORMAT_BITMASK, "files": files}
            _rewrite_json(os.path.join(tmp, "config.json"), lambda data: data.update({SPARSITY_KEY: metadata}))
        if tokenizer is not None:
            tokenizer.save_pretrained(tmp)
        side_car = {
            "config": config.to_recipe_dict(),
            "format": metadata["format"],
            "library_versions": library_versions(),
            "calibration": report.extra.get("calibration", {}),
            "base_model": base_model
            or getattr(model.config, "_name_or_path", None)
            or getattr(model, "name_or_path", None),
        }
        if recovery is not None:
            side_car["recovery"] = recovery
        if model_card:
            from .card import write_model_card

            card_info = write_model_card(
                tmp,
                model,
                metadata,
                side_car,
                base_model=base_model,
                license=license,
                evaluation=evaluation if evaluation is not None else report.extra.get("evaluation"),
                model_name=os.path.basename(target),
                samples=samples,
            )
            side_car["base_model"] = card_info.get("base_model") or side_car["base_model"]
            if recovery is not None:
                append_recovery_section(os.path.join(tmp, "README.md"), recovery)
        side_car[MANIFEST_KEY] = sorted({*os.listdir(tmp), CONFIG_NAME})  # what a later overwrite may delete
        with open(os.path.join(tmp, CONFIG_NAME), "w", encoding="utf-8") as f:
            json.dump(side_car, f, indent=2, sort_keys=True)
        replace_folder(tmp, target)
    except BaseException:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        raise
    logger.info("Saved the pruned model (%s format) to %s", metadata["format"], target)
    return target


def _model_sources(model) -> list[str]:
    """Local paths the model was loaded from (never to be replaced by a save)."""
    names = {getattr(model, "name_or_path", None), getattr(model.config, "_name_or_path", None)}
    return [n for n in names if isinstance(n, str) and n and os.path.exists(n)]


def _parameter_bytes(model) -> int:
    """Bytes of the model's parameters and buffers (tied weights once): about the size of its safetensors."""
    tensors = {id(t): t for t in [*model.parameters(), *model.buffers()]}
    return sum(t.numel() * t.element_size() for t in tensors.values())


def _model_class(config):
    """The causal-LM class named in `config.architectures` (written by `save_pretrained`)."""
    import transformers

    for name in getattr(config, "architectures", None) or []:
        cls = getattr(transformers, name, None)
        if cls is not None:
            return cls
    raise ConfigError(
        f"config.json names no transformers class in architectures={getattr(config, 'architectures', None)!r}; "
        "re-save the model with save_pretrained."
    )


def load_pretrained(
    path: str | os.PathLike,
    dtype: str | torch.dtype | None = None,
    device: str | torch.device | None = None,
    **load_kwargs: Any,
):
    """Load a folder written by `save_pretrained`, dense or compressed, as an ordinary transformers model.

    Args:
        path (`str`): the folder, or a hub id (`"namespace/name"`, see `models.hub_ids`; downloaded with `snapshot_download`; `token`,
            `revision` and `cache_dir` in `load_kwargs` go there).
        dtype (`str` or `torch.dtype`, *optional*): dtype to load in; defaults to the dtype stored.
        device (`str` or `torch.device`, *optional*): device to move the model to.
        load_kwargs: passed to `AutoModelForCausalLM.from_pretrained`.

    Returns:
        `PreTrainedModel`: a dense model in eval mode (zeros in place). Its `dpruner_sparsity` metadata says
        `format: dense`, so that `model.save_pretrained` writes a consistent plain checkpoint.

    Raises:
        `ConfigError`: `path` is not a folder with `config.json` and weights; `HubError`: a Hub id that could not
        be downloaded (offline, unknown, no access).
    """
    from transformers import AutoConfig, AutoModelForCausalLM, GenerationConfig

    path = os.fspath(path)
    if is_hub_id(path):
        from huggingface_hub import snapshot_download

        hub_kwargs = {k: load_kwargs.pop(k) for k in ("token", "revision", "cache_dir") if k in load_kwargs}
        try:
            path = snapshot_download(path, **hub_kwargs)
        except Exception as e:  # noqa: BLE001 - offline (LocalEntryNotFoundError), unknown repo, no access...
            from ..errors import HubError, describe_error

            raise HubError(
                f"path={path!r} is not a local folder and could not be downloaded from the Hub "
                f"({describe_error(e).split('. ')[0]}); check the path, or the Hub id and your connection."
            ) from None
    if not os.path.isfile(os.path.join(path, "config.json")):
        raise ConfigError(f"path={path!r} has no config.json; pass a folder written by save_pretrained or a hub id.")
    if not compressed_files(path):
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype or "auto", **load_kwargs)
    else:
        config = AutoConfig.from_pretrained(path)
        state_dict = dict(read_weights(path))
        if dtype is None:
            dtype = next((t.dtype for t in state_dict.values() if t.is_floating_point()), None)
        model_cls = _model_class(config)
        model = model_cls.from_pretrained(None, config=config, state_dict=state_dict, dtype=dtype, **load_kwargs)
        if os.path.isfile(os.path.join(path, "generation_config.json")):
            model.generation_config = GenerationConfig.from_pretrained(path)
    metadata = getattr(model.config, SPARSITY_KEY, None)
    if isinstance(metadata, dict):
        setattr(model.config, SPARSITY_KEY, {k: v for k, v in {**metadata, "format": FORMAT_DENSE}.items() if k != "files"})
    if device is not None:
        model = model.to(device)
    return model.eval()
