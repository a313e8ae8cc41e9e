"""Loading a causal LM from any source, and finding its decoder blocks and target linears generically."""

from __future__ import annotations

import fnmatch
import logging
import os
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import CheckpointError, ConfigError, UnsupportedModelError, describe_error

__all__ = ["HUB_LOADING_OPTIONS", "hub_loading_options", "load_model", "load_model_config", "load_model_skeleton", "load_tokenizer", "find_decoder_blocks", "find_target_linears", "resolve_dtype", "DecoderBlocks"]

logger = logging.getLogger(__name__)

_DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "float16": torch.float16,
    "fp16": torch.float16,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
}


#: the `from_pretrained` options that the config and the tokenizer of a model must be loaded with too (the same
#: revision, cache and code as the weights)
HUB_LOADING_OPTIONS = ("revision", "cache_dir", "trust_remote_code", "token", "local_files_only")


def hub_loading_options(load_kwargs: dict) -> dict:
    """The entries of `load_kwargs` that also apply to the config and the tokenizer (`HUB_LOADING_OPTIONS`)."""
    return {k: v for k, v in load_kwargs.items() if k in HUB_LOADING_OPTIONS}


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


_CAUSAL_LM_HINT = "D-Pruner prunes decoder-only causal LMs that AutoModelForCausalLM loads (LLaMA, Mistral, Qwen2, Gemma3...)."


def _check_causal_lm(config) -> None:
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES, MODEL_FOR_MASKED_LM_MAPPING_NAMES

    model_type = getattr(config, "model_type", None)
    architectures = getattr(config, "architectures", None) or [model_type]
    if getattr(config, "is_encoder_decoder", False) or model_type not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        raise UnsupportedModelError(
            f"model_type={model_type!r} ({', '.join(map(str, architectures))}) is not a decoder-only causal LM; {_CAUSAL_LM_HINT}"
        )
    # BERT-like encoders also have a causal-LM class, which is a decoder only with is_decoder=True
    if model_type in MODEL_FOR_MASKED_LM_MAPPING_NAMES and not (
        getattr(config, "is_decoder", False) or getattr(config, "causal", False)
    ):
        raise UnsupportedModelError(
            f"model_type={model_type!r} ({', '.join(map(str, architectures))}) is an encoder (bidirectional "
            f"attention, is_decoder=False), not a causal LM; {_CAUSAL_LM_HINT}"
        )


def _check_no_new_weights(model, loading_info: dict, path: str) -> None:
    """`UnsupportedModelError` when loading left weights randomly initialised (e.g. an LM head the checkpoint lacks)."""
    missing = sorted(loading_info.get("missing_keys") or ())
    if missing:
        raise UnsupportedModelError(
            f"{path!r} ({type(model).__name__}) lacks {len(missing)} weights that would be newly initialised at random "
            f"(e.g. {missing[0]}): it is not a complete causal LM checkpoint; {_CAUSAL_LM_HINT}"
        )


def _from_pretrained(load, path: str, gguf_file: str | None = None):
    """Run a transformers load of `path`, naming the path and the fix when it is missing or corrupt."""
    from safetensors import SafetensorError

    if gguf_file is None and os.path.isdir(path) and not os.path.isfile(os.path.join(path, "config.json")):
        found = ", ".join(sorted(e for e in os.listdir(path) if not e.startswith("."))[:3]) or "nothing"
        raise ConfigError(
            f"model_or_path={path!r} is a folder without config.json (it holds {found}); pass a folder saved by "
            "save_pretrained (config.json beside the weights), a .gguf file or a Hub model id."
        )
    try:
        return load()
    except SafetensorError as e:
        bad = _unreadable_safetensors(path)
        raise CheckpointError(
            f"{bad or path!r}: the weights are truncated or corrupt ({describe_error(e)}); download or save the model again."
        ) from None
    except OSError as e:
        if os.path.exists(path):
            raise
        reason = describe_error(e).split(". ")[0]  # transformers adds paragraphs of advice
        raise ConfigError(
            f"model_or_path={path!r} is not a local folder or file (nothing at {os.path.abspath(path)!r}) and could not "
            f"be loaded from the Hub ({reason}); check the path, or the Hub id and your connection."
        ) from None
    except RuntimeError as e:
        if "mismatch" not in str(e) or not os.path.exists(path):
            raise
        raise CheckpointError(  # transformers prints the per-weight report above its error
            f"{path!r}: config.json does not match the weights (a tensor's shape differs from the one config.json "
            "implies); restore the config.json saved with these weights, or download the model again."
        ) from None
    except Exception as e:  # noqa: BLE001 - the GGUF reader fails with struct.error, KeyError, ValueError...
        if gguf_file is None:
            raise
        raise CheckpointError(
            f"{os.path.join(path, gguf_file)!r} is not a readable GGUF file ({describe_error(e)}); download it again, "
            "or pass a transformers folder."
        ) from None


def _unreadable_safetensors(folder: str) -> str | None:
    """The first `.safetensors` file of `folder` whose header cannot be read, if any."""
    from .files import open_safetensors

    if not os.path.isdir(folder):
        return None
    for name in sorted(os.listdir(folder)):
        if name.endswith(".safetensors"):
            try:
                with open_safetensors(os.path.join(folder, name)):
                    pass
            except CheckpointError:
                return os.path.join(folder, name)
    return None


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
        `UnsupportedModelError`: the model is not a decoder-only causal LM, or loading it would initialise weights
        at random (e.g. a base model saved without its LM head); `ConfigError`: no such local path or Hub model;
        `CheckpointError`: a `.safetensors` file is truncated or corrupt.
    """
    from transformers import AutoModelForCausalLM, PreTrainedModel

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
        load_model_config(model_or_path, **hub_loading_options(load_kwargs))
        model, loading_info = _from_pretrained(
            lambda: AutoModelForCausalLM.from_pretrained(
                path, dtype=torch_dtype or "auto", output_loading_info=True, **load_kwargs
            ),
            path,
            gguf_file,
        )
        _check_no_new_weights(model, loading_info, path)
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


def load_model_config(model_or_path, **hub_options):
    """The transformers config of a model (loaded, folder, hub id or `.gguf` file), checked to be a causal LM.

    `hub_options` (`revision`, `cache_dir`, `trust_remote_code`...) go to `AutoConfig.from_pretrained`.

    Raises:
        `UnsupportedModelError`: the model is not a decoder-only causal LM; `ConfigError`: no such path or Hub model.
    """
    from transformers import AutoConfig, PreTrainedModel

    if isinstance(model_or_path, PreTrainedModel):
        config = model_or_path.config
    else:
        path, gguf_file = _split_gguf(os.fspath(model_or_path))
        config = _from_pretrained(
            lambda: AutoConfig.from_pretrained(path, **hub_options, **({"gguf_file": gguf_file} if gguf_file else {})),
            path,
            gguf_file,
        )
    _check_causal_lm(config)
    return config


def load_model_skeleton(model_or_path, dtype: str | torch.dtype | None = None, **hub_options):
    """The model's architecture on the `meta` device: every shape and dtype, no weights read (for estimates).

    Raises:
        `UnsupportedModelError`: the model is not a decoder-only causal LM.
    """
    from transformers import AutoModelForCausalLM

    config = load_model_config(model_or_path, **hub_options)
    torch_dtype = resolve_dtype(dtype) or getattr(config, "dtype", None) or torch.float32
    if isinstance(torch_dtype, str):
        torch_dtype = resolve_dtype(torch_dtype)
    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(
            config, dtype=torch_dtype, **({"trust_remote_code": True} if hub_options.get("trust_remote_code") else {})
        )


def load_tokenizer(model_or_path, tokenizer=None, **hub_options):
    """Return `tokenizer` if given, else load the one that belongs to `model_or_path` (or `None` if there is none);
    `hub_options` (`revision`, `cache_dir`, `trust_remote_code`...) go to `AutoTokenizer.from_pretrained`."""
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
        return AutoTokenizer.from_pretrained(path, **hub_options, **({"gguf_file": gguf_file} if gguf_file else {}))
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
