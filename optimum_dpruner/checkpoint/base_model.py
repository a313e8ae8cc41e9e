"""What a pruned model was pruned from: the base model's hub id, licence and language, for the model card.

Read from the model's `name_or_path`, then from the base model's own card: in its folder, in the local Hub cache,
or (once, with a short timeout) from the Hub. This is the only part of writing a checkpoint that may use the
network, and it is best effort: anything it cannot learn is left unset on the card.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from ..models.hub_ids import is_hub_id

__all__ = ["resolve_base_model"]

logger = logging.getLogger(__name__)

# The embedded default model is converted from GGUF into a local folder; its card facts are known.
_DEFAULT_BASE = ("HuggingFaceTB/SmolLM2-135M-Instruct", "apache-2.0")


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
