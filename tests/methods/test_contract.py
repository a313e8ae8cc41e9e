"""One contract, every method: sparsity per matrix, N:M groups, untouched non-targets, determinism."""

import pytest
import torch

from optimum_dpruner import DPruner, DPrunerConfig
from optimum_dpruner.stages import iter_target_linears

# (method, pattern, granularity)
METHOD_CASES = [
    ("magnitude", "unstructured", None),
    ("magnitude", "unstructured", "row"),
    ("magnitude", "2:4", None),
    ("wanda", "unstructured", None),
    ("wanda", "unstructured", "layer"),
    ("wanda", "unstructured", "block"),
    ("wanda", "2:4", None),
    ("wanda", "4:8", None),
    ("sparsegpt", "unstructured", None),
    ("sparsegpt", "unstructured", "row"),
    ("sparsegpt", "unstructured", "layer"),
    ("sparsegpt", "2:4", None),
    ("sparsegpt", "4:8", None),
    ("dpruner", "unstructured", None),
    ("dpruner", "unstructured", "block"),
    ("dpruner", "unstructured", "row"),
    ("dpruner", "2:4", None),
]
IDS = [f"{m}-{p}-{g or 'default'}" for m, p, g in METHOD_CASES]


def _prune(model, tokenizer, method, pattern, granularity, sparsity=None):
    config = DPrunerConfig(
        method=method,
        pattern=pattern,
        sparsity=sparsity,
        granularity=granularity,
        block_size=32,
        num_samples=4,
        seq_len=64,
        domain_num_samples=2,
        seed=0,
    )
    domain = "builtin:medical" if method == "dpruner" else None
    return DPruner(model, tokenizer, config).prune("builtin:general", domain, progress=False)


@pytest.mark.parametrize("method,pattern,granularity", METHOD_CASES, ids=IDS)
def test_every_matrix_reaches_the_sparsity(tiny_llama, tokenizer, method, pattern, granularity):
    q = tiny_llama.model.layers[0].self_attn.q_proj.weight
    with torch.no_grad():
        q[:, :8] = 0.0  # zeros that were there before pruning count towards the target
    before = {n: p.detach().clone() for n, p in tiny_llama.named_parameters()}
    result = _prune(tiny_llama, tokenizer, method, pattern, granularity)
    targets = iter_target_linears(tiny_llama, result.config)
    assert len(targets) == 14
    for name, module in targets.items():
        w = module.weight
        sparsity = (w == 0).float().mean().item()
        if pattern != "unstructured" and name.endswith("0.self_attn.q_proj"):
            # N:M cannot undo zeros: the 2 groups per row that were all zero stay so (0.5 + 0.5 * 8/64)
            assert sparsity == pytest.approx(0.5625), name
        else:
            assert abs(sparsity - 0.5) < 0.01, (name, sparsity)
        assert result.report.matrices[name].zeros == int((w == 0).sum())
        if pattern != "unstructured":
            n, m = result.config.nm
            zeros_per_group = (w == 0).reshape(w.shape[0], -1, m).sum(-1)
            assert (zeros_per_group >= m - n).all(), name
    target_params = {f"{n}.weight" for n in targets}
    for name, param in tiny_llama.named_parameters():
        if name not in target_params:  # embeddings, lm_head, norms, biases
            assert torch.equal(param, before[name]), name
    assert abs(result.report.sparsity - 0.5) < 0.02


@pytest.mark.parametrize("method,pattern,granularity", METHOD_CASES, ids=IDS)
def test_same_seed_gives_the_same_mask_bit_for_bit(make_tiny, tokenizer, method, pattern, granularity):
    first = _prune(make_tiny("llama", seed=1), tokenizer, method, pattern, granularity).model
    second = _prune(make_tiny("llama", seed=1), tokenizer, method, pattern, granularity).model
    for (name, a), (_, b) in zip(first.named_parameters(), second.named_parameters()):
        assert torch.equal(a == 0, b == 0), name
        assert torch.equal(a, b), name


@pytest.mark.parametrize("method", ["magnitude", "wanda", "sparsegpt"])
def test_other_sparsities(tiny_llama, tokenizer, method):
    result = _prune(tiny_llama, tokenizer, method, "unstructured", None, sparsity=0.7)
    for name, m in result.report.matrices.items():
        assert abs(m.sparsity - 0.7) < 0.01, name
