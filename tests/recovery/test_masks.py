"""The mask is kept exactly: full and LoRA-merged recovery on tiny models, unstructured and 2:4; the merged LoRA model
computes what the adapter model computed; a plain peft merge loses the zeros; the loss falls; a non-finite step stops."""

from __future__ import annotations

import pytest
import torch

from optimum_dpruner import NumericalError, RecoveryConfig, recover, verify_sparsity
from optimum_dpruner.recovery.lora import add_masked_lora, merge_masked_lora
from optimum_dpruner.recovery.masking import target_names
from optimum_dpruner.recovery.stream import stream_layout

from .conftest import GENERAL, TEXT, assert_nm, assert_zeros_kept, pruned_positions

FAST = dict(mode="full", max_steps=4, seq_len=32, batch_size=2, warmup_steps=0, logging_steps=1, learning_rate=1e-2)


@pytest.mark.parametrize(
    "mode, pattern, extra",
    [("full", "unstructured", {}), ("full", "2:4", {"weight_decay": 0.1}), ("lora", "unstructured", {}),
     ("lora", "2:4", {"lora_dropout": 0.1}), ("full", "unstructured", {"train_params": "targets"})],
    ids=["full-unstructured", "full-2of4-weight-decay", "lora-unstructured", "lora-2of4-dropout", "full-targets-only"],
)
def test_every_pruned_weight_stays_zero(prune_tiny, tokenizer, mode, pattern, extra):
    pruned = prune_tiny(pattern)
    names = target_names(pruned.model)
    before = pruned_positions(pruned.model, names)
    start = {n: pruned.model.get_submodule(n).weight.detach().clone() for n in names}
    result = pruned.recover([GENERAL], [TEXT], RecoveryConfig(**{**FAST, "mode": mode, **extra}), progress=False)
    assert_zeros_kept(result.model, before)
    if pattern == "2:4":
        assert_nm(result.model, names, 2, 4)
    assert verify_sparsity(result.model).ok
    assert result.report.unmasked_after == 0 and result.report.steps == 4
    assert result.report.sparsity_after == pytest.approx(result.report.sparsity_before)
    moved = sum(not torch.equal(result.model.get_submodule(n).weight, start[n]) for n in names)
    assert moved == len(names)  # it did train every target
    assert all(p.requires_grad for p in result.model.parameters()) and not result.model.training


def test_full_mode_keeps_the_optimizer_state_zero(prune_tiny):
    from optimum_dpruner.recovery.masking import MaskKeeper, capture_masks

    pruned = prune_tiny()
    names = target_names(pruned.model)
    masks = capture_masks(pruned.model, names)
    model = pruned.model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.1)
    ids = torch.randint(0, 1000, (2, 16))
    with MaskKeeper(model, masks) as keeper:
        for _ in range(2):
            model(input_ids=ids, labels=ids).loss.backward()
            for n in names:  # the gradient hook masked the gradient before it was accumulated
                assert int(model.get_submodule(n).weight.grad[masks[n]].ne(0).sum()) == 0
            optimizer.step()  # AdamW on masked gradients leaves the pruned weights at zero before any re-zeroing
            assert all(int(model.get_submodule(n).weight[masks[n]].ne(0).sum()) == 0 for n in names)
            keeper.on_optimizer_step(None, None, None, optimizer=optimizer)  # re-zeroes the weights only
            optimizer.zero_grad()
    for n in names:
        weight = model.get_submodule(n).weight
        state = optimizer.state[weight]
        assert int(state["exp_avg"][masks[n]].ne(0).sum()) == 0 and int(state["exp_avg_sq"][masks[n]].ne(0).sum()) == 0
        assert int(weight[masks[n]].ne(0).sum()) == 0
    ids2 = torch.randint(0, 1000, (1, 8))
    model(input_ids=ids2, labels=ids2).loss.backward()  # hooks removed on exit: gradients are dense again
    assert any(int(model.get_submodule(n).weight.grad[masks[n]].ne(0).sum()) for n in names)


def _random_adapters(peft_model, seed: int = 0) -> None:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:  # peft starts B at zero: a merge right away would add nothing
                param.copy_(torch.randn(param.shape, generator=generator) * 0.05)


@pytest.mark.parametrize("pattern", ["unstructured", "2:4"])
def test_masked_merge_keeps_zeros_and_logits_plain_peft_merge_does_not(prune_tiny, pattern):
    ids = torch.randint(0, 1000, (2, 24), generator=torch.Generator().manual_seed(1))
    results = {}
    for masked in (True, False):
        pruned = prune_tiny(pattern)
        names = target_names(pruned.model)
        before = pruned_positions(pruned.model, names)
        peft_model = add_masked_lora(pruned.model, names, r=4, alpha=8, dropout=0.0, masked=masked)
        _random_adapters(peft_model)
        with torch.no_grad():
            adapter_logits = peft_model(input_ids=ids).logits
        merged = merge_masked_lora(peft_model)
        with torch.no_grad():
            merged_logits = merged(input_ids=ids).logits
        torch.testing.assert_close(merged_logits, adapter_logits, rtol=1e-4, atol=1e-4)
        results[masked] = (merged, before, verify_sparsity(merged))
    merged, before, check = results[True]
    assert_zeros_kept(merged, before) and check.ok
    _, _, plain = results[False]
    assert not plain.ok and "sparsity" in plain.problems[0]  # peft's own merge fills the pruned positions in


def test_fused_masked_forward_matches_base_plus_update(prune_tiny, monkeypatch):
    """Without dropout the layer runs x (W + delta W)^T once; its outputs and adapter gradients are those of
    base(x) + x delta W^T."""
    from optimum_dpruner.recovery.lora import MaskedLoraLinear

    ids = torch.randint(0, 1000, (2, 24), generator=torch.Generator().manual_seed(2))
    runs = {}
    for fused in (True, False):
        pruned = prune_tiny("unstructured")
        peft_model = add_masked_lora(pruned.model, target_names(pruned.model), r=4, alpha=8, dropout=0.0)
        _random_adapters(peft_model)
        layers = [m for m in peft_model.modules() if isinstance(m, MaskedLoraLinear)]
        taken = []
        original = MaskedLoraLinear._fusable
        monkeypatch.setattr(MaskedLoraLinear, "_fusable",
                            lambda self, *a: taken.append(fused and original(self, *a)) or taken[-1])
        loss = peft_model(input_ids=ids, labels=ids).loss
        loss.backward()
        monkeypatch.undo()
        assert len(taken) == len(layers) and all(t is fused for t in taken)
        grads = {n: p.grad.clone() for n, p in peft_model.named_parameters() if p.requires_grad}
        runs[fused] = (loss.detach(), grads)
    torch.testing.assert_close(runs[True][0], runs[False][0], rtol=1e-5, atol=1e-5)
    assert runs[True][1].keys() == runs[False][1].keys() and any("lora_A" in n for n in runs[True][1])
    for name, grad in runs[True][1].items():
        torch.testing.assert_close(grad, runs[False][1][name], rtol=1e-4, atol=1e-6)


def test_a_layer_without_zeros_takes_peft_own_forward(make_tiny, monkeypatch):
    from peft.tuners.lora.layer import Linear as LoraLinear

    model = make_tiny("llama")
    names = target_names(model)
    model.get_submodule(names[0]).weight.data[0, :3] = 0  # one layer with zeros, the others dense
    peft_model = add_masked_lora(model, names, r=4, alpha=8, dropout=0.0)
    _random_adapters(peft_model)
    layers = {n: m for n, m in peft_model.named_modules() if hasattr(m, "dpruner_has_zeros")}
    assert sorted(n for n, m in layers.items() if m.dpruner_has_zeros) == [n for n in layers if n.endswith(names[0])]
    calls = []
    original = LoraLinear.forward
    monkeypatch.setattr(LoraLinear, "forward", lambda self, *a, **k: calls.append(self) or original(self, *a, **k))
    ids = torch.randint(0, 1000, (1, 8), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        peft_model(input_ids=ids)
    dense_layers = [m for m in layers.values() if not m.dpruner_has_zeros]
    assert dense_layers and all(any(c is m for c in calls) for m in dense_layers)
    assert not any(c is m for c in calls for m in layers.values() if m.dpruner_has_zeros)


def test_loss_falls_on_repeated_text(prune_tiny):
    config = RecoveryConfig(mode="full", max_steps=8, seq_len=32, batch_size=2, warmup_steps=0, logging_steps=1, learning_rate=1e-2,
                            domain_share=1.0)
    result = prune_tiny().recover(None, [TEXT], config, progress=False)
    losses = [loss for _, loss in result.report.losses]
    assert len(losses) == 8
    assert losses[-1] < 0.7 * losses[0]
    assert result.report.tokens == 8 * 2 * 32 and result.report.seconds > 0 and result.report.peak_memory_bytes > 0


def test_distillation_from_the_dense_model_with_gradient_checkpointing(prune_tiny, make_tiny):
    teacher = make_tiny("llama")  # the dense model the pruned one came from (same seed)
    config = RecoveryConfig(**{**FAST, "max_steps": 2, "distill_weight": 0.5, "distill_temperature": 2.0})
    result = prune_tiny().recover([GENERAL], [TEXT], config, teacher=teacher, progress=False, gradient_checkpointing=True)
    assert verify_sparsity(result.model).ok and len(result.report.losses) == 2
    assert all(not p.requires_grad for p in teacher.parameters())


def test_the_stream_mixes_by_domain_share():
    layout = stream_layout(8, 0.75)
    assert layout == [False, True, True, True, False, True, True, True]
    assert all(sum(layout[: k + 1]) == int(0.75 * (k + 1)) for k in range(8))  # every prefix holds the share, rounded down
    assert stream_layout(5, 0.0) == [False] * 5 and stream_layout(5, 1.0) == [True] * 5


def test_a_non_finite_loss_stops_with_the_last_good_weights(prune_tiny):
    pruned = prune_tiny()
    names = target_names(pruned.model)
    before = pruned_positions(pruned.model, names)
    calls = []

    def poison(module, args, output):  # the third training forward returns NaN logits
        calls.append(1)
        return output * float("nan") if len(calls) == 3 else output

    handle = pruned.model.lm_head.register_forward_hook(poison)
    try:
        with pytest.raises(NumericalError, match="at step 3 of 4; the model keeps the weights after step 2") as info:
            pruned.recover([GENERAL], [TEXT], RecoveryConfig(**{**FAST, "batch_size": 1}), progress=False)
    finally:
        handle.remove()
    assert "\n" not in str(info.value)
    result = info.value.result
    assert result.report.steps == 2
    assert all(torch.isfinite(p).all() for p in result.model.parameters())
    assert_zeros_kept(result.model, before)
