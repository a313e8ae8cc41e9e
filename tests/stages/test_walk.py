"""The block walk: inputs captured with hooks reproduce the model's own computation, on several architectures."""

import pytest
import torch

from conftest import ARCHS
from optimum_dpruner import DPruner, DPrunerConfig, UnsupportedModelError, verify_sparsity
from optimum_dpruner.data.calibration import calibration_samples
from optimum_dpruner.methods import SparseGPTMethod
from optimum_dpruner.models.loading import find_decoder_blocks
from optimum_dpruner.stages import capture_block_inputs, iter_target_linears, prune_blockwise


@pytest.mark.parametrize("arch", ARCHS)
def test_captured_inputs_reproduce_every_block(make_tiny, tokenizer, arch):
    model = make_tiny(arch, num_layers=3)
    samples = calibration_samples("builtin:general", tokenizer, 3, 48, seed=0)
    blocks = find_decoder_blocks(model)
    inputs = capture_block_inputs(model, blocks, samples, progress=False)
    assert len(inputs.hidden) == 3 and all(len(c) == 3 for c in inputs.calls)
    with torch.no_grad():
        for s, ids in enumerate(samples):
            hidden = model(input_ids=ids, output_hidden_states=True).hidden_states
            torch.testing.assert_close(inputs.hidden[s], hidden[0])
            for b in range(2):  # the last entry of hidden_states is after the final norm
                args, kwargs = inputs.calls[b][s]
                out = blocks.blocks[b](hidden[b], *args, **kwargs)
                out = out[0] if isinstance(out, tuple) else out
                torch.testing.assert_close(out, hidden[b + 1], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("arch", ARCHS)
def test_sparsegpt_prunes_every_architecture(make_tiny, tokenizer, arch):
    model = make_tiny(arch)
    config = DPrunerConfig(method="sparsegpt", num_samples=4, seq_len=64, block_size=32)
    result = DPruner(model, tokenizer, config).prune("builtin:general", progress=False)
    assert abs(result.report.sparsity - 0.5) < 0.01
    assert len(result.report.matrices) == 14
    ids = calibration_samples("builtin:general", tokenizer, 1, 32, seed=3)[0]
    with torch.no_grad():
        assert torch.isfinite(model(input_ids=ids).logits).all()


def test_hooks_are_removed_even_on_error(tiny_llama, tokenizer):
    class Boom(SparseGPTMethod):
        def prune_group(self, weights, statistic, timer=None):
            raise RuntimeError("boom")

    samples = calibration_samples("builtin:general", tokenizer, 2, 32, seed=0)
    config = DPrunerConfig(method="sparsegpt")
    with pytest.raises(RuntimeError, match="boom"):
        prune_blockwise(tiny_llama, samples, Boom(config), config, progress=False)
    for module in tiny_llama.modules():
        assert not module._forward_hooks and not module._forward_pre_hooks


def test_restore_weights_keeps_the_model_and_returns_saliency(tiny_llama, tokenizer):
    before = {n: p.detach().clone() for n, p in tiny_llama.named_parameters()}
    seen = {}
    samples = calibration_samples("builtin:general", tokenizer, 2, 32, seed=0)
    prune_blockwise(
        tiny_llama, samples, SparseGPTMethod(DPrunerConfig(method="sparsegpt"), keep_saliency=True),
        DPrunerConfig(method="sparsegpt"), on_layer=lambda n, r: seen.__setitem__(n, r.saliency), restore_weights=True,
        progress=False,
    )
    for name, param in tiny_llama.named_parameters():
        assert torch.equal(param, before[name]), name
    assert set(seen) == set(iter_target_linears(tiny_llama, DPrunerConfig()))
    assert all(s is not None and torch.isfinite(s).all() for s in seen.values())


def test_targets_and_ignore_select_matrices(tiny_llama, tokenizer):
    config = DPrunerConfig(method="magnitude", targets=["*.mlp.*"], ignore=["*.down_proj"])
    result = DPruner(tiny_llama, tokenizer, config).prune(progress=False)
    assert sorted(result.report.matrices) == [
        "model.layers.0.mlp.gate_proj", "model.layers.0.mlp.up_proj",
        "model.layers.1.mlp.gate_proj", "model.layers.1.mlp.up_proj",
    ]
    assert (tiny_llama.model.layers[0].self_attn.q_proj.weight != 0).all()


def test_no_matching_target_is_an_error(tiny_llama, tokenizer):
    with pytest.raises(UnsupportedModelError, match="no target linear"):
        DPruner(tiny_llama, tokenizer, DPrunerConfig(method="magnitude", targets=["*.nothing"])).prune(progress=False)


def test_bf16_model_is_pruned_with_fp32_statistics(make_tiny, tokenizer):
    model = make_tiny("llama").to(torch.bfloat16)
    config = DPrunerConfig(method="sparsegpt", num_samples=2, seq_len=32, block_size=32)
    result = DPruner(model, tokenizer, config).prune(progress=False)
    assert model.model.layers[0].mlp.up_proj.weight.dtype == torch.bfloat16
    assert abs(result.report.sparsity - 0.5) < 0.01


def test_offloaded_activations_and_hessians_give_the_same_weights(make_tiny, tokenizer):
    def pruned(**options):
        config = DPrunerConfig(method="sparsegpt", num_samples=2, seq_len=32, block_size=32, **options)
        return DPruner(make_tiny("llama"), tokenizer, config).prune(progress=False).model

    plain, offloaded = pruned(), pruned(offload_activations=True, offload_hessians=True, execution_device="cpu")
    for (name, a), b in zip(plain.named_parameters(), offloaded.parameters()):
        assert torch.equal(a, b), name


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_model_in_cpu_ram_is_pruned_block_by_block_on_cuda(make_tiny, tokenizer):
    config = DPrunerConfig(method="sparsegpt", num_samples=2, seq_len=32, block_size=32)
    on_gpu = DPruner(make_tiny("llama").cuda(), tokenizer, config).prune(progress=False).model
    offloaded_config = DPrunerConfig(method="sparsegpt", num_samples=2, seq_len=32, block_size=32,
                                     execution_device="cuda", offload_activations=True, offload_hessians=True)
    torch.cuda.reset_peak_memory_stats()
    offloaded = DPruner(make_tiny("llama"), tokenizer, offloaded_config).prune(progress=False).model
    assert all(p.device.type == "cpu" for p in offloaded.parameters())  # the model never left CPU RAM for good
    for (name, a), b in zip(on_gpu.named_parameters(), offloaded.parameters()):
        assert torch.equal(a.cpu() == 0, b == 0), name
        torch.testing.assert_close(a.cpu(), b, rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize("device,message", [
    ("gpu0", "is not a device name"),
    pytest.param("cuda:7", "no cuda device is available",
                 marks=pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")),
])
def test_bad_execution_device_is_named(tiny_llama, tokenizer, device, message):
    from optimum_dpruner import ConfigError

    config = DPrunerConfig(method="wanda", num_samples=1, seq_len=16, execution_device=device)
    with pytest.raises(ConfigError, match=f"execution_device={device!r}.*{message}"):
        DPruner(tiny_llama, tokenizer, config).prune(progress=False)


@pytest.mark.parametrize("method", ["sparsegpt", "dpruner"])
def test_a_model_offloaded_to_disk_by_accelerate_gives_the_in_memory_weights(tmp_path, make_tiny, tokenizer, method):
    """Blocks on "disk" (transformers device_map + offload_folder): each is loaded through accelerate's hooks once,
    pruned, and written back to the offload folder; forwards, the report and save_pretrained see the pruned weights."""
    from transformers import AutoModelForCausalLM

    from optimum_dpruner.runtime.offload import accelerate_offloaded

    make_tiny("llama").save_pretrained(tmp_path / "dense")
    options = dict(method=method, num_samples=2, seq_len=32, block_size=32, domain_num_samples=2, learning_rate=0.01)
    config = DPrunerConfig(**options)
    calibration = ("builtin:general", "builtin:medical") if method == "dpruner" else ("builtin:general",)
    in_memory = DPruner(AutoModelForCausalLM.from_pretrained(tmp_path / "dense"), tokenizer, config).prune(
        *calibration, progress=False)
    device_map = {"model.embed_tokens": "cpu", "model.layers.0": "disk", "model.layers.1": "disk", "model.norm": "cpu",
                  "model.rotary_emb": "cpu", "lm_head": "cpu"}
    offloaded_model = AutoModelForCausalLM.from_pretrained(tmp_path / "dense", device_map=device_map,
                                                           offload_folder=str(tmp_path / "offload"))
    assert accelerate_offloaded(offloaded_model)
    offloaded = DPruner(offloaded_model, tokenizer, config).prune(*calibration, progress=False)
    assert offloaded.model.model.layers[0].mlp.up_proj.weight.device.type == "meta"  # still offloaded afterwards
    assert offloaded.report.matrices == in_memory.report.matrices
    assert offloaded.report.total_zeros == in_memory.report.total_zeros
    ids = torch.randint(0, 100, (1, 16))
    with torch.no_grad():
        torch.testing.assert_close(offloaded.model(ids).logits, in_memory.model(ids).logits, rtol=1e-5, atol=1e-5)
    assert verify_sparsity(offloaded.model).ok
    offloaded.save_pretrained(tmp_path / "pruned")
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path / "pruned")
    for name, param in in_memory.model.named_parameters():
        torch.testing.assert_close(reloaded.get_parameter(name), param, rtol=1e-5, atol=1e-6, msg=name)


def test_a_gpt2_style_model_is_refused_for_its_conv1d_layers(tokenizer):
    from transformers import GPT2Config, GPT2LMHeadModel

    from optimum_dpruner import DPruner, DPrunerConfig, UnsupportedModelError

    model = GPT2LMHeadModel(GPT2Config(n_embd=32, n_layer=1, n_head=2, vocab_size=len(tokenizer), n_positions=128))
    with pytest.raises(UnsupportedModelError, match=r"^GPT2LMHeadModel computes its projections with transformers' Conv1D"):
        DPruner(model, tokenizer, DPrunerConfig(method="magnitude")).prune(progress=False)
