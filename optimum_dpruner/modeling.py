"""Loading a causal LM from any source, and finding its decoder blocks and target linears generically."""

from __future__ import annotations

import fnmatch
import logging
import os
from dataclasses import dataclass

import torch
from torch import nn

from .errors import ConfigError, UnsupportedModelError

__all__ = ["load_model", "load_model_skeleton", "load_tokenizer", "find_decoder_blocks", "find_target_linears", "resolve_dtype", "DecoderBlocks"]

logger = logging.getLogger(__name__)

_DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "float16": torch.float16,
    "fp16": torch.float16,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
}


def resolve_dtype(dtype: str | torch.dtype | None) -> torch.dtype | None:
    """Turn `"bfloat16"`, `"bf16"`, `torch.bfloat16`... into a `torch.dtype` (`None` and `"auto"` give `None`)."""
    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    if dtype == "auto":
        return None
    try:
        return _DTYPES[str(dtype)]
    except KeyError:
        raise ConfigError(f"dtype={dtype!r} is unknown; choose one of {', '.join(sorted(_DTYPES))} or 'auto'.") from None


def _check_causal_lm(config) -> None:
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    model_type = getattr(config, "model_type", None)
    if getattr(config, "is_encoder_decoder", False) or model_type not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        raise UnsupportedModelError(
            f"model_type={model_type!r} is not a decoder-only causal LM; D-Pruner prunes models that "
            "AutoModelForCausalLM loads (LLaMA, Mistral, Qwen2, Gemma3...)."
        )


def _split_gguf(path: str) -> tuple[str, str | None]:
    if path.endswith(".gguf"):
        return os.path.dirname(path) or ".", os.path.basename(path)
    return path, None


def load_model(
    model_or_path,
    dtype: str | torch.dtype | None = None,
    device: str | torch.device | None = None,
    **load_kwargs,
):
    """Load (or check) a decoder-only causal LM.

    Args:
        model_or_path (`PreTrainedModel` or `str`): a loaded model, a local folder, a hub id, or a `.gguf` file.
        dtype (`str` or `torch.dtype`, *optional*): dtype to load or cast to (`"float32"`, `"bfloat16"`...).
        device (`str` or `torch.device`, *optional*): device to move the model to.
        load_kwargs: passed to `AutoModelForCausalLM.from_pretrained`.

    Returns:
        `PreTrainedModel`: the model, in eval mode.

    Raises:
        `UnsupportedModelError`: the model is not a decoder-only causal LM.
    """
    from transformers import AutoConfig, AutoModelForCausalLM, PreTrainedModel

    torch_dtype = resolve_dtype(dtype)
    if isinstance(model_or_path, PreTrainedModel):
        model = model_or_path
        _check_causal_lm(model.config)
        if model.get_output_embeddings() is None:
            raise UnsupportedModelError(
                f"{type(model).__name__} has no language-modelling head; load it with AutoModelForCausalLM."
            )
        if torch_dtype is not None:
            model = model.to(torch_dtype)
    elif isinstance(model_or_path, (str, os.PathLike)):
        path, gguf_file = _split_gguf(os.fspath(model_or_path))
        if gguf_file is not None:
            load_kwargs.setdefault("gguf_file", gguf_file)
        config = AutoConfig.from_pretrained(path, **({"gguf_file": gguf_file} if gguf_file else {}))
        _check_causal_lm(config)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype or "auto", **load_kwargs)
        if gguf_file is not None:
            # A GGUF model is dequantized on load; drop the quantizer so that save_pretrained works.
            model.hf_quantizer = None
            if hasattr(model.config, "quantization_config"):
                del model.config.quantization_config
    else:
        raise UnsupportedModelError(
            f"model_or_path of type {type(model_or_path).__name__} is not supported; pass a PreTrainedModel, "
            "a folder, a hub id or a .gguf file."
        )
    if device is not None:
        model = model.to(device)
    model.eval()
    return model


def load_model_skeleton(model_or_path, dtype: str | torch.dtype | None = None):
    """The model's architecture on the `meta` device: every shape and dtype, no weights read (for estimates).

    Raises:
        `UnsupportedModelError`: the model is not a decoder-only causal LM.
    """
    from transformers import AutoConfig, AutoModelForCausalLM, PreTrainedModel

    if isinstance(model_or_path, PreTrainedModel):
        config = model_or_path.config
    else:
        path, gguf_file = _split_gguf(os.fspath(model_or_path))
        config = AutoConfig.from_pretrained(path, **({"gguf_file": gguf_file} if gguf_file else {}))
    _check_causal_lm(config)
    torch_dtype = resolve_dtype(dtype) or getattr(config, "dtype", None) or torch.float32
    if isinstance(torch_dtype, str):
        torch_dtype = resolve_dtype(torch_dtype)
    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(config, dtype=torch_dtype)


def load_tokenizer(model_or_path, tokenizer=None):
    """Return `tokenizer` if given, else load the one that belongs to `model_or_path` (or `None` if there is none)."""
    if tokenizer is not None:
        return tokenizer
    from transformers import AutoTokenizer, PreTrainedModel

    if isinstance(model_or_path, PreTrainedModel):
        source = getattr(model_or_path, "name_or_path", "") or getattr(model_or_path.config, "_name_or_path", "")
        if not source:
            return None
        path, gguf_file = source, None
    else:
        path, gguf_file = _split_gguf(os.fspath(model_or_path))
    try:
        return AutoTokenizer.from_pretrained(path, **({"gguf_file": gguf_file} if gguf_file else {}))
    except (OSError, ValueError) as e:
        logger.info("No tokenizer found for %s: %s", path, e)
        return None


@dataclass
class DecoderBlocks:
    """The decoder blocks of a model: the `ModuleList` and its dotted name (e.g. `model.layers`)."""

    name: str
    blocks: nn.ModuleList

    def __len__(self) -> int:
        return len(self.blocks)


def find_decoder_blocks(model: nn.Module) -> DecoderBlocks:
    """Find the `ModuleList` of decoder blocks.

    Tries optimum's block-name patterns (as GPTQ does), then falls back to the longest `ModuleList` whose entries
    all share one class.
    """
    from optimum.gptq.utils import get_block_name_with_pattern

    modules = dict(model.named_modules())
    try:
        name = get_block_name_with_pattern(model)
        if isinstance(modules.get(name), nn.ModuleList):
            return DecoderBlocks(name, modules[name])
    except ValueError:
        pass
    best: tuple[str, nn.ModuleList] | None = None
    for name, module in modules.items():
        if isinstance(module, nn.ModuleList) and len(module) > 0 and len({type(m) for m in module}) == 1:
            if best is None or len(module) > len(best[1]):
                best = (name, module)
    if best is None:
        raise UnsupportedModelError(
            f"no decoder blocks found in {type(model).__name__}; expected a ModuleList of identical layers."
        )
    return DecoderBlocks(*best)


def _matches(name: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def find_target_linears(
    block: nn.Module, prefix: str, targets: list[str] | None = None, ignore: list[str] | None = None
) -> dict[str, nn.Linear]:
    """The `nn.Linear` modules of `block` to prune, keyed by their full dotted name (`prefix` + relative name).

    `targets` and `ignore` are fnmatch patterns over the full name (e.g. `"*.mlp.*"`, `"*.o_proj"`).
    """
    found: dict[str, nn.Linear] = {}
    for rel, module in block.named_modules():
        if not isinstance(module, nn.Linear) or not rel:
            continue
        full = f"{prefix}.{rel}"
        if targets is not None and not _matches(full, targets):
            continue
        if ignore and _matches(full, ignore):
            continue
        found[full] = module
    return found
