"""What a checkpoint says about a recovery run after the pruning: the summary in the `dpruner_sparsity` metadata
and the "Recovery" section of the model card (a `recovered` tag, the data, the budget and the sparsity check).

The full record (`RecoveryConfig`, data fingerprints, tokens seen) is under `"recovery"` in `dpruner_config.json`.
"""

from __future__ import annotations

import os
from typing import Any

from ..models.hub_ids import is_hub_id

__all__ = ["recovery_summary", "recovery_card_lines", "append_recovery_section"]


def recovery_summary(recovery: dict[str, Any]) -> dict[str, Any]:
    """The short form kept in `config.json["dpruner_sparsity"]["recovery"]`."""
    cfg = recovery.get("config") or {}
    return {"mode": cfg.get("mode"), "steps": recovery.get("steps"), "tokens": recovery.get("tokens")}


def recovery_card_lines(recovery: dict[str, Any]) -> list[str]:
    """The "Recovery" section of the model card, as markdown lines."""
    cfg = recovery.get("config") or {}
    data = recovery.get("data") or {}
    mode = cfg.get("mode")
    how = ("masked full-parameter fine-tuning (pruned weights' gradients, optimizer state and values kept at zero)"
           if mode == "full" else
           f"a LoRA adapter (rank {cfg.get('lora_r')}) whose update was masked by the pruned positions, then merged")
    sources = ", ".join(f"{side} `{info.get('source')}` ({info.get('tokens_used', 0):,} tokens)" for side, info in data.items())
    distill = (f"; distillation from the dense model, weight {cfg.get('distill_weight')}, temperature "
               f"{cfg.get('distill_temperature')}" if cfg.get("distill_weight") else "")
    loss = recovery.get("first_loss"), recovery.get("final_loss")
    lines = [
        "## Recovery",
        "",
        f"After pruning, this model was fine-tuned to recover what pruning lost: {how}, on transformers' Trainer.",
        "",
        f"- Data: {sources or 'none recorded'}; domain share {cfg.get('domain_share')}{distill}",
        f"- Budget: {recovery.get('steps')} steps, {recovery.get('tokens', 0):,} tokens (batch {cfg.get('batch_size')} x "
        f"{cfg.get('seq_len')} tokens); AdamW, learning rate {cfg.get('learning_rate')}, {cfg.get('lr_scheduler_type')} "
        f"schedule, {cfg.get('warmup_steps')} warm-up steps",
    ]
    if loss[0] is not None and loss[1] is not None:
        lines.append(f"- Training loss: {loss[0]:.4f} at the first logged step, {loss[1]:.4f} at the last")
    lines += [
        f"- Sparsity of the target matrices: {recovery.get('sparsity_before', 0):.4f} before, "
        f"{recovery.get('sparsity_after', 0):.4f} after; pruned weights made non-zero: {recovery.get('unmasked_after', 0)}",
        "",
        "The recovery recipe, the fingerprints of its data and the tokens seen are under `recovery` in `dpruner_config.json`.",
        "",
    ]
    return lines


def append_recovery_section(readme: str | os.PathLike, recovery: dict[str, Any]) -> None:
    """Add the `recovered` tag, the recovery datasets (Hub ids) and the "Recovery" section to the card at `readme`."""
    from huggingface_hub import ModelCard

    card = ModelCard.load(os.fspath(readme))
    card.data.tags = list(dict.fromkeys([*(card.data.tags or []), "recovered"]))
    hub_sets = [i.get("source") for i in (recovery.get("data") or {}).values() if isinstance(i.get("source"), str)
                and is_hub_id(i["source"])]
    if hub_sets:
        card.data.datasets = sorted({*(card.data.datasets or []), *hub_sets})
    card.text = card.text.rstrip("\n") + "\n\n" + "\n".join(recovery_card_lines(recovery))
    card.save(os.fspath(readme))
