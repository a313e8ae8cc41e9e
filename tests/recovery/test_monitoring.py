"""Evaluation during recovery (`eval_ds`, `eval_steps`) and the default distillation teacher (the base model the
pruned checkpoint records)."""

from __future__ import annotations

import math

import pytest
import torch

from optimum_dpruner import ConfigError, DPruner, DPrunerConfig, RecoveryConfig, recover
from optimum_dpruner.data.calibration import calibration_samples

from .conftest import GENERAL, TEXT

FAST = dict(mode="full", max_steps=4, seq_len=32, batch_size=2, warmup_steps=0, logging_steps=1, learning_rate=1e-2)


def test_evaluations_start_with_the_pruned_model_and_follow_eval_steps(prune_tiny, tokenizer):
    pruned = prune_tiny()
    config = RecoveryConfig(eval_steps=2, **FAST)
    windows = calibration_samples([GENERAL], tokenizer, 3, config.seq_len, config.seed + 1000, "text",
                                  pruned.model.config, config.add_bos)
    with torch.no_grad():
        before = sum(float(pruned.model(input_ids=w.view(1, -1), labels=w.view(1, -1)).loss) for w in windows) / 3
    result = recover(pruned.model, [GENERAL], [TEXT], config, tokenizer=tokenizer, progress=False,
                     eval_ds={"general": [GENERAL], "domain": [TEXT]}, eval_windows=3)
    steps = {}
    for step, metrics in result.report.evaluations:
        steps.setdefault(step, {}).update(metrics)
    assert sorted(steps) == [0, 2, 4]
    assert all({"eval_general_loss", "eval_domain_loss"} <= set(m) for m in steps.values())
    assert steps[0]["eval_general_loss"] == pytest.approx(before, rel=1e-5)  # step 0: the pruned model, untouched
    assert steps[4]["eval_domain_loss"] < steps[0]["eval_domain_loss"]  # the repeated domain text is learned
    assert all(math.isfinite(v) for m in steps.values() for v in m.values())


def test_distillation_defaults_to_the_recorded_base_model(make_tiny, tokenizer, tmp_path):
    dense_dir = tmp_path / "dense"
    make_tiny("llama", seed=0).save_pretrained(dense_dir)
    tokenizer.save_pretrained(dense_dir)
    config = DPrunerConfig(method="magnitude")
    pruned_dir = DPruner.from_pretrained(str(dense_dir), config=config).prune(progress=False).save_pretrained(
        tmp_path / "pruned")
    other_dir = tmp_path / "other"
    make_tiny("llama", seed=1).save_pretrained(other_dir)
    recipe = RecoveryConfig(distill_weight=1.0, **FAST)

    def weights(**teacher) -> dict[str, torch.Tensor]:
        model = recover(pruned_dir, [GENERAL], [TEXT], recipe, progress=False, **teacher).model
        return {k: v.detach().clone() for k, v in model.state_dict().items()}

    default, explicit, other = weights(), weights(teacher=str(dense_dir)), weights(teacher=str(other_dir))
    assert all(torch.equal(default[k], explicit[k]) for k in default)
    assert any(not torch.equal(default[k], other[k]) for k in default)


def test_distillation_without_a_known_base_model_names_the_fix(prune_tiny, tokenizer):
    pruned = prune_tiny()  # pruned from a model object: no base model is recorded
    with pytest.raises(ConfigError, match="teacher="):
        recover(pruned.model, [GENERAL], [TEXT], RecoveryConfig(distill_weight=0.5, **FAST), tokenizer=tokenizer,
                progress=False)
