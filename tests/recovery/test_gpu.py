"""The exactness checks of recovery on CUDA (skipped without it): full and LoRA-merged, unstructured and 2:4, the
merged LoRA model against the adapter model, and the CUDA result against the CPU one on the same batches."""

from __future__ import annotations

import pytest
import torch

from optimum_dpruner import RecoveryConfig, verify_sparsity
from optimum_dpruner.recovery.lora import add_masked_lora, merge_masked_lora
from optimum_dpruner.recovery.masking import target_names

from .conftest import GENERAL, TEXT, assert_nm, assert_zeros_kept, pruned_positions

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]

FAST = dict(mode="full", max_steps=4, seq_len=32, batch_size=2, warmup_steps=0, logging_steps=1, learning_rate=1e-2)


@pytest.mark.parametrize("mode", ["full", "lora"])
@pytest.mark.parametrize("pattern", ["unstructured", "2:4"])
def test_zeros_kept_on_cuda(prune_tiny, mode, pattern):
    pruned = prune_tiny(pattern)
    names = target_names(pruned.model)
    before = pruned_positions(pruned.model, names)
    result = pruned.recover([GENERAL], [TEXT], RecoveryConfig(**{**FAST, "mode": mode}), device="cuda", progress=False)
    assert next(result.model.parameters()).device.type == "cuda"
    assert_zeros_kept(result.model, before)
    if pattern == "2:4":
        assert_nm(result.model, names, 2, 4)
    assert verify_sparsity(result.model).ok and result.report.unmasked_after == 0
    assert result.report.peak_cuda_bytes.get("recovery", 0) > 0


def test_merged_lora_matches_the_adapter_model_on_cuda(prune_tiny):
    pruned = prune_tiny()
    names = target_names(pruned.model)
    before = pruned_positions(pruned.model, names)
    peft_model = add_masked_lora(pruned.model.cuda(), names, r=4, alpha=8, dropout=0.0)
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.05)
        ids = torch.randint(0, 1000, (2, 24), device="cuda")
        adapter_logits = peft_model(input_ids=ids).logits
        merged = merge_masked_lora(peft_model)
        torch.testing.assert_close(merged(input_ids=ids).logits, adapter_logits, rtol=1e-3, atol=1e-3)
    assert_zeros_kept(merged, before)


def test_cuda_and_cpu_agree_on_the_same_batches(prune_tiny):
    config = RecoveryConfig(**FAST)
    on_cpu = prune_tiny().recover([GENERAL], [TEXT], config, device="cpu", progress=False)
    on_cuda = prune_tiny().recover([GENERAL], [TEXT], config, device="cuda", progress=False)
    for (name, a), b in zip(on_cpu.model.state_dict().items(), on_cuda.model.state_dict().values()):
        torch.testing.assert_close(b.cpu(), a, rtol=1e-3, atol=1e-4, msg=name)
        if name.endswith("proj.weight"):
            assert torch.equal(b.cpu() == 0, a == 0), name
