"""Recovered checkpoints tell the truth (side car, metadata, card, verify_sparsity on the folder); recovery from a
saved folder; bad input; resume from a Trainer checkpoint gives the uninterrupted run's weights."""

from __future__ import annotations

import json
import os

import pytest
import torch

from optimum_dpruner import (
    CheckpointError, ConfigError, DataError, RecoveryConfig, UnsupportedModelError, generate_samples, recover, verify_sparsity,
)
from optimum_dpruner.recovery.masking import target_names

from .conftest import GENERAL, TEXT, assert_zeros_kept, pruned_positions

FAST = dict(mode="full", max_steps=2, seq_len=32, batch_size=2, warmup_steps=0, logging_steps=1, learning_rate=1e-2)


def test_saved_folder_records_the_recovery_and_recovers_again(prune_tiny, tokenizer, tmp_path):
    pruned = prune_tiny()
    pruned_dir = pruned.save_pretrained(tmp_path / "pruned")
    names = target_names(pruned.model)
    before = pruned_positions(pruned.model, names)
    result = recover(pruned_dir, [GENERAL], [TEXT], RecoveryConfig(**{**FAST, "mode": "lora", "lora_r": 4}), progress=False)
    out = result.save_pretrained(tmp_path / "recovered", sample_prompt="The court held that")
    assert verify_sparsity(out).ok
    side_car = json.loads((tmp_path / "recovered" / "dpruner_config.json").read_text())
    recovery = side_car["recovery"]
    assert recovery["config"]["mode"] == "lora" and recovery["steps"] == 2 and recovery["tokens"] == 2 * 2 * 32
    assert set(recovery["data"]) == {"general", "domain"} and len(recovery["data"]["domain"]["sha256"]) == 64
    pruned_side_car = json.loads((tmp_path / "pruned" / "dpruner_config.json").read_text())
    assert side_car["config"] == pruned_side_car["config"]  # the pruning recipe is kept
    assert side_car["calibration"] == json.loads((tmp_path / "pruned" / "dpruner_config.json").read_text())["calibration"]
    metadata = json.loads((tmp_path / "recovered" / "config.json").read_text())["dpruner_sparsity"]
    assert metadata["recovery"] == {"mode": "lora", "steps": 2, "tokens": 128}
    card = (tmp_path / "recovered" / "README.md").read_text()
    assert "## Recovery" in card and "fine-tuned to recover" in card and "- recovered" in card
    sample = generate_samples(result.model, result.tokenizer, "The court held that")[0]  # the recovered model's text
    assert f"```text\n{sample}\n```" in card and card.index("Greedy continuation") < card.index("## Recovery")
    from transformers import AutoModelForCausalLM

    reloaded = AutoModelForCausalLM.from_pretrained(out)
    assert_zeros_kept(reloaded, before)
    # a recovered folder can be recovered again; its own folder is protected, a folder we wrote may be replaced
    again = recover(out, None, [TEXT], RecoveryConfig(domain_share=1.0, **FAST), progress=False)
    with pytest.raises(ConfigError, match="holds the model being pruned"):
        again.save_pretrained(out, overwrite=True)
    assert verify_sparsity(again.save_pretrained(tmp_path / "pruned", overwrite=True)).ok


def test_output_over_a_foreign_folder_is_refused(prune_tiny, tmp_path):
    result = prune_tiny().recover([GENERAL], [TEXT], RecoveryConfig(**{**FAST, "max_steps": 1}), progress=False)
    foreign = tmp_path / "notes"
    foreign.mkdir()
    (foreign / "mine.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="is not a checkpoint written by optimum-dpruner"):
        result.save_pretrained(foreign, overwrite=True)
    with pytest.raises(ConfigError, match="already exists; pass overwrite=True"):
        result.save_pretrained(foreign)
    assert os.listdir(foreign) == ["mine.txt"]


def test_a_model_with_no_zeros_is_refused_unless_allowed(make_tiny, tokenizer):
    dense = make_tiny("llama")
    with pytest.raises(UnsupportedModelError, match="hold no zero weights.*allow_dense=True") as info:
        recover(dense, [GENERAL], [TEXT], RecoveryConfig(**FAST), tokenizer=tokenizer, progress=False)
    assert "\n" not in str(info.value)
    result = recover(dense, [GENERAL], [TEXT], RecoveryConfig(**{**FAST, "max_steps": 1}), tokenizer=tokenizer,
                     allow_dense=True, progress=False)
    assert result.report.sparsity_before == 0 and result.report.steps == 1


def test_a_lost_mask_is_refused(prune_tiny):
    pruned = prune_tiny()
    name = target_names(pruned.model)[0]
    with torch.no_grad():
        pruned.model.get_submodule(name).weight.add_(1e-3)  # e.g. fine-tuned without the mask
    with pytest.raises(CheckpointError, match=f"mask was lost: {name}: sparsity 0.0000 < recorded 0.5000"):
        pruned.recover([GENERAL], [TEXT], RecoveryConfig(**FAST), progress=False)


@pytest.mark.parametrize(
    "general, domain, message",
    [([GENERAL], [], "domain_ds=<list of 0 texts>: the dataset is empty"),
     ([GENERAL], ["too short"], "domain_ds=<list of 1 texts>: the texts hold 3 tokens, fewer than one sequence of seq_len=32"),
     ([GENERAL], None, "domain_ds is needed")],
    ids=["empty", "too-short", "missing"],
)
def test_bad_data_is_a_one_line_data_error(prune_tiny, general, domain, message):
    with pytest.raises(DataError, match=message) as info:
        prune_tiny().recover(general, domain, RecoveryConfig(**FAST), progress=False)
    assert "\n" not in str(info.value)


def test_resume_gives_the_uninterrupted_weights(prune_tiny, tmp_path):
    config = RecoveryConfig(**{**FAST, "max_steps": 4, "save_steps": 2, "batch_size": 1})
    full = prune_tiny().recover([GENERAL], [TEXT], config, output_dir=tmp_path / "run", progress=False)
    assert (tmp_path / "run" / "checkpoint-2").is_dir()
    resumed = prune_tiny().recover([GENERAL], [TEXT], config, output_dir=tmp_path / "again", progress=False,
                                   resume_from_checkpoint=str(tmp_path / "run" / "checkpoint-2"))
    assert resumed.report.steps == 4
    for (name, a), b in zip(full.model.state_dict().items(), resumed.model.state_dict().values()):
        torch.testing.assert_close(b, a, rtol=0, atol=1e-6, msg=name)


def test_resume_without_a_complete_checkpoint_names_the_fix(prune_tiny, tmp_path):
    (tmp_path / "run" / "checkpoint-4").mkdir(parents=True)  # a save stopped before trainer_state.json
    with pytest.raises(ConfigError, match="no complete Trainer checkpoint in .*run; run without resuming"):
        prune_tiny().recover([GENERAL], [TEXT], RecoveryConfig(**FAST), output_dir=tmp_path / "run", progress=False,
                             resume_from_checkpoint=True)
