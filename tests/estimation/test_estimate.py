"""`estimate()`: each stage's peak is the sum of parts that follow the model's shapes and the config."""

from __future__ import annotations

import pytest
import torch

from optimum_dpruner import DPruner, DPrunerConfig, estimate
from optimum_dpruner.estimation import Rates, estimate_run
from optimum_dpruner.models.loading import load_model_skeleton
from optimum_dpruner.stages import iter_target_linears

RATES = Rates(matmul_flops=1e10, elementwise=1e9, op_seconds=1e-5)  # fixed, so that seconds are comparable


def _stages(model, **options):
    """Stages of the paper preset (general stage, gradient pass, masking) unless `options` say otherwise."""
    return {s.stage: s for s in estimate_run(model, DPrunerConfig.paper(**options), rates=RATES).stages}


def test_parts_follow_the_shapes(tiny_llama):
    targets = iter_target_linears(tiny_llama, DPrunerConfig())
    numel = sum(m.weight.numel() for m in targets.values())
    block0 = [m for n, m in targets.items() if n.startswith("model.layers.0.")]
    weights = sum(p.numel() * 4 for p in tiny_llama.parameters())
    stages = _stages(tiny_llama, seq_len=64, num_samples=8)
    assert stages["calibration_data"].parts["weights"] == weights
    # SparseGPT keeps one fp32 (d_in, d_in) Hessian per matrix of the current block
    assert stages["general_importance"].parts["statistics"] == sum(m.weight.shape[1] ** 2 * 4 for m in block0)
    assert stages["domain_importance"].parts["scores"] == 2 * numel * 4  # G and I
    assert _stages(tiny_llama, importance_dtype="bfloat16")["domain_importance"].parts["scores"] == 2 * numel * 2
    # twice the calibration sequences: twice the stored hidden states, more work
    more = _stages(tiny_llama, seq_len=64, num_samples=16)
    hidden = 8 * 64 * 64 * 4
    assert more["general_importance"].parts["activations"] - stages["general_importance"].parts["activations"] == 2 * hidden
    assert more["general_importance"].seconds > stages["general_importance"].seconds
    # a baseline has one pruning stage; Wanda holds no Hessian
    assert list(_stages(tiny_llama, method="wanda")) == ["calibration_data", "prune"]
    assert "statistics" not in _stages(tiny_llama, method="wanda")["prune"].parts


def test_default_recipe_runs_the_gradient_pass_then_one_reconstruction_pass(tiny_llama):
    targets = iter_target_linears(tiny_llama, DPrunerConfig())
    numel = sum(m.weight.numel() for m in targets.values())
    block0 = [m for n, m in targets.items() if n.startswith("model.layers.0.")]
    stages = {s.stage: s for s in estimate_run(tiny_llama, DPrunerConfig(seq_len=64, num_samples=8), rates=RATES).stages}
    assert list(stages) == ["calibration_data", "domain_importance", "reconstruction"]
    assert stages["domain_importance"].parts["scores"] == numel * 4  # I only: no general stage G
    assert stages["reconstruction"].parts["statistics"] == sum(m.weight.shape[1] ** 2 * 4 for m in block0)
    # the pass runs over the general and the domain windows (beta in (0, 1)); beta = 0 drops the domain ones
    general_only = {s.stage: s for s in estimate_run(tiny_llama, DPrunerConfig(seq_len=64, num_samples=8, domain_weight=0.0),
                                                     rates=RATES).stages}
    assert general_only["reconstruction"].seconds < stages["reconstruction"].seconds


def test_offloaded_weights_count_one_block_and_processes_split_the_batch(tiny_llama):
    config = DPrunerConfig.paper(domain_batch_size=4)
    resident = estimate_run(tiny_llama, config, rates=RATES).stages
    offloaded = estimate_run(tiny_llama, config, rates=RATES, offloaded=True).stages
    block = sum(p.numel() * 4 for p in tiny_llama.model.layers[0].parameters())
    assert offloaded[1].parts["weights"] == block < resident[1].parts["weights"]
    two = estimate_run(tiny_llama, config, rates=RATES, num_processes=2).stages
    assert two[2].parts["activations"] < resident[2].parts["activations"]
    assert two[2].parts["scores"] == resident[2].parts["scores"]
    # FSDP: the device holds half of the weights and the block being gathered
    sharded = estimate_run(tiny_llama, DPrunerConfig.paper(domain_batch_size=4, domain_parallelism="fsdp"), rates=RATES,
                           num_processes=2).stages
    assert sharded[2].parts["weights"] == resident[2].parts["weights"] // 2 + block


def test_estimate_reads_no_weights_and_agrees_with_the_loaded_model(tmp_path, make_tiny, tokenizer):
    model = make_tiny("llama")
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    skeleton = load_model_skeleton(str(tmp_path))
    assert all(p.device.type == "meta" for p in skeleton.parameters())
    config = DPrunerConfig(seq_len=32, num_samples=2)
    from_path = estimate(str(tmp_path), config)
    from_model = DPruner(model, tokenizer, config).estimate()
    for a, b in zip(from_path.stages, from_model.stages):
        assert a.stage == b.stage
        assert {k: v for k, v in a.parts.items() if k != "runtime"} == {k: v for k, v in b.parts.items() if k != "runtime"}
    assert "domain_importance" in str(from_path)


def _small_llama():
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(hidden_size=512, intermediate_size=1024, num_hidden_layers=4, num_attention_heads=8,
                         num_key_value_heads=8, vocab_size=8000, tie_word_embeddings=False)
    return LlamaForCausalLM(config)


def test_runtime_does_not_count_weights_whether_or_not_they_were_read(tmp_path):
    """A safetensors checkpoint loads memory-mapped: its pages become resident only once read. The runtime the
    estimate adds to the weights must not shrink by the pages still on disk (it did: SmolLM2's was 0)."""
    from transformers import AutoModelForCausalLM

    from optimum_dpruner.estimation import resident_parameter_bytes, runtime_rss

    in_memory = _small_llama()
    total = sum(p.numel() * 4 for p in in_memory.parameters())
    assert resident_parameter_bytes(in_memory) == total  # copies in process memory count in full
    in_memory.save_pretrained(tmp_path)
    del in_memory
    mapped = AutoModelForCausalLM.from_pretrained(tmp_path, dtype=torch.float32)
    before = runtime_rss(mapped)
    with torch.no_grad():
        for p in mapped.parameters():
            p.sum()  # read every page
    assert total <= resident_parameter_bytes(mapped) <= total + 2**20  # + the file's header and page rounding
    after = runtime_rss(mapped)
    assert abs(after - before) < 0.1 * total, (before, after, total)


def test_the_first_check_of_a_run_reads_every_weight(tmp_path):
    """Why every estimated stage holds all weights, a memory-mapped checkpoint's too: `prune()` starts with
    `check_finite_weights`, which reads every page before the calibration text is cut."""
    from transformers import AutoModelForCausalLM

    from optimum_dpruner.estimation import resident_parameter_bytes
    from optimum_dpruner.stages.checks import check_finite_weights

    model = _small_llama()
    total = sum(p.numel() * 4 for p in model.parameters())
    model.save_pretrained(tmp_path)
    del model
    mapped = AutoModelForCausalLM.from_pretrained(tmp_path, dtype=torch.float32)
    assert resident_parameter_bytes(mapped) < total  # loaded memory-mapped: not all read yet
    check_finite_weights(mapped)
    assert resident_parameter_bytes(mapped) >= total


NO_DATA, GENERAL, BOTH = (), ("builtin:general",), ("builtin:general", "builtin:medical")
STAGE_CASES = [  # (id, config options, the data prune() gets)
    ("magnitude", dict(method="magnitude"), NO_DATA),
    ("magnitude-obs", dict(method="magnitude", reconstruction="obs"), GENERAL),
    ("wanda-mixed", dict(method="wanda"), BOTH),
    ("sparsegpt-2:4", dict(method="sparsegpt", pattern="2:4"), GENERAL),
    ("dpruner", dict(method="dpruner"), BOTH),
    ("dpruner-importance", dict(method="dpruner", mask_score="importance"), BOTH),
    ("dpruner-obs-general", dict(method="dpruner", general_importance="obs"), BOTH),
    ("paper", dict(method="dpruner", general_importance="sparsegpt", lambda_reg=0.1, reconstruction="none",
                   mask_score="importance"), BOTH),
    ("paper-no-general", dict(method="dpruner", reconstruction="none", mask_score="importance"), BOTH),
]


@pytest.mark.parametrize("options, data", [c[1:] for c in STAGE_CASES], ids=[c[0] for c in STAGE_CASES])
def test_the_estimated_stages_are_those_the_run_reports(tiny_llama, tokenizer, options, data):
    config = DPrunerConfig(seq_len=32, num_samples=2, domain_num_samples=2, **options)
    estimated = [s.stage for s in estimate_run(tiny_llama, config, rates=RATES, domain_data=data == BOTH).stages]
    report = DPruner(tiny_llama, tokenizer, config).prune(*data, progress=False).report
    assert estimated == list(report.stage_seconds)


def test_the_masking_pass_holds_the_scores_the_run_computed(tiny_llama):
    numel = sum(m.weight.numel() for m in iter_target_linears(tiny_llama, DPrunerConfig()).values())
    assert _stages(tiny_llama)["masking"].parts["scores"] == 2 * numel * 4  # G and I
    assert _stages(tiny_llama, general_importance="none", lambda_reg=0.0)["masking"].parts["scores"] == numel * 4  # I only
