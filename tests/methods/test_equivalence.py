"""The faster code gives the reference implementation's masks and weights (to float tolerance).

Shared statistics for linears that read one input, stacked OBS passes, the single-factorisation inverse Hessian and
the column-major update loop must not change what a method returns: each is checked against `reference.py`.
"""

import pytest
import torch
from torch import nn

from conftest import ARCHS
from optimum_dpruner import DPruner, DPrunerConfig
from optimum_dpruner.stages import SharedStatistics, iter_target_linears
from optimum_dpruner.data.calibration import calibration_samples
from optimum_dpruner.runtime.hooks import HookManager
from optimum_dpruner.methods.obs import MaskSpec, inverse_hessian_factor, obs_prune
from optimum_dpruner.methods.statistics import Hessian
from optimum_dpruner.models.loading import find_decoder_blocks, find_target_linears

from .reference import reference_prune, reference_sparsegpt, reference_upper

SOLVER_CASES = [("block", None), ("row", None), ("layer", None), ("block", (2, 4)), ("block", (4, 8))]


def _problem(rows=40, d_in=96, seed=0):
    generator = torch.Generator().manual_seed(seed)
    # correlated inputs of uneven scales, as in a real layer (uncorrelated ones leave the OBS update nothing to do)
    x = torch.randn(512, 24, generator=generator) @ torch.randn(24, d_in, generator=generator)
    x = (x + 0.3 * torch.randn(512, d_in, generator=generator)) * torch.linspace(0.1, 3.0, d_in)
    x[:, 5] = 0.0  # a dead input
    weight = torch.randn(rows, d_in, generator=generator)
    return weight, 2 * x.T @ x / x.shape[0]


def test_single_factorisation_gives_the_reference_upper_factor():
    _, hessian = _problem()
    hessian.diagonal()[5] = 1.0
    upper = inverse_hessian_factor(hessian, 0.01)
    torch.testing.assert_close(upper, reference_upper(hessian, 0.01), rtol=1e-4, atol=1e-5)
    assert torch.equal(upper, upper.triu())


@pytest.mark.parametrize("granularity,nm", SOLVER_CASES, ids=[f"{g}-{nm}" for g, nm in SOLVER_CASES])
def test_obs_solver_matches_the_reference_loop(granularity, nm):
    weight, hessian = _problem()
    expected, expected_mask, expected_saliency = reference_sparsegpt(weight, hessian, 0.5, granularity, nm, block_size=32)
    hessian.diagonal()[5] = 1.0
    w = weight.clone()
    w[:, 5] = 0.0
    new, mask, saliency = obs_prune(w, inverse_hessian_factor(hessian, 0.01), MaskSpec(0.5, granularity, nm),
                                    block_size=32, return_saliency=True)
    assert torch.equal(mask, expected_mask)
    torch.testing.assert_close(new, expected, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(saliency, expected_saliency, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("granularity,nm", SOLVER_CASES, ids=[f"{g}-{nm}" for g, nm in SOLVER_CASES])
def test_stacked_matrices_get_what_each_gets_alone(granularity, nm):
    weight, hessian = _problem(rows=72)
    upper = inverse_hessian_factor(hessian + torch.eye(hessian.shape[0]) * (hessian.diagonal() == 0), 0.01)
    rows = [slice(0, 40), slice(40, 56), slice(56, 72)]  # q, k, v of different heights
    spec = MaskSpec(0.5, granularity, nm)
    new, mask, _ = obs_prune(weight, upper, spec, block_size=32, row_groups=rows)
    for r in rows:
        alone, alone_mask, _ = obs_prune(weight[r], upper, spec, block_size=32)
        assert torch.equal(mask[r], alone_mask)
        torch.testing.assert_close(new[r], alone, rtol=1e-5, atol=1e-6)
        assert (mask[r].float().mean() - 0.5).abs() < 1e-6


def test_fixed_mask_is_kept_and_beats_masking_alone():
    weight, hessian = _problem()
    hessian.diagonal()[5] = 1.0
    generator = torch.Generator().manual_seed(1)
    mask = torch.rand(weight.shape, generator=generator) < 0.5
    new, kept, _ = obs_prune(weight, inverse_hessian_factor(hessian, 0.01), mask=mask, block_size=32)
    assert torch.equal(kept, mask) and torch.equal(new == 0, mask | (weight == 0))

    def error(w):  # layer output error against the dense weight under H: tr((W - W0) H (W - W0)^T)
        delta = w - weight
        return (delta @ hessian * delta).sum()

    assert error(new) < 0.9 * error(weight.masked_fill(mask, 0))  # 0.81 here


CASES = [
    ("magnitude", "unstructured", None), ("magnitude", "2:4", None),
    ("wanda", "unstructured", None), ("wanda", "unstructured", "block"), ("wanda", "2:4", None),
    ("sparsegpt", "unstructured", None), ("sparsegpt", "unstructured", "row"), ("sparsegpt", "unstructured", "layer"),
    ("sparsegpt", "2:4", None), ("sparsegpt", "4:8", None),
]


@pytest.mark.parametrize("method,pattern,granularity", CASES, ids=[f"{m}-{p}-{g}" for m, p, g in CASES])
def test_block_walk_matches_the_reference_pipeline(make_tiny, tokenizer, method, pattern, granularity):
    config = DPrunerConfig(method=method, pattern=pattern, granularity=granularity, num_samples=4, seq_len=64,
                           block_size=32)
    samples = calibration_samples("builtin:general", tokenizer, 4, 64, seed=0)
    reference = make_tiny("llama", seed=2)
    reference_prune(reference, samples, method, config)
    ours = DPruner(make_tiny("llama", seed=2), tokenizer, config).prune("builtin:general", progress=False).model
    expected = iter_target_linears(reference, config)
    for name, module in iter_target_linears(ours, config).items():
        got, want = module.weight, expected[name].weight
        agree = (got == 0) == (want == 0)
        assert agree.float().mean() > 0.999, name  # a mask entry may flip on a float-level tie
        torch.testing.assert_close(got[agree], want[agree], rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("arch", ARCHS)
def test_linears_reading_one_input_share_one_statistic(make_tiny, tokenizer, arch):
    model = make_tiny(arch)
    block = find_decoder_blocks(model).blocks[0]
    targets = find_target_linears(block, "b")
    samples = calibration_samples("builtin:general", tokenizer, 3, 32, seed=0)
    hessians = {name: Hessian(m.weight.shape[1], torch.device("cpu")) for name, m in targets.items()}
    shared = SharedStatistics({n: m.weight.shape[1] for n, m in targets.items()},
                              lambda d: Hessian(d, torch.device("cpu")))
    with HookManager() as hooks, torch.no_grad():
        for name, module in targets.items():
            hooks.add_forward_hook(module, lambda m, a, o, _n=name: shared.record(_n, a[0]))
            hooks.add_forward_hook(module, lambda m, a, o, _n=name: hessians[_n].add_batch(a[0], 1.0))
        for ids in samples:
            shared.weight = 1.0
            model(input_ids=ids)
            shared.end_window()
    groups = {tuple(n.split(".")[-1] for n in g.members): g for g in shared.groups()}
    assert set(groups) == {("q_proj", "k_proj", "v_proj"), ("o_proj",), ("gate_proj", "up_proj"), ("down_proj",)}
    for group in groups.values():
        for name in group.members:  # the shared statistic is what each linear would have collected alone
            assert torch.equal(group.statistic.matrix, hessians[name].matrix), name
        assert group.statistic.num_tokens == 3 * 32


class _TwoInputs(nn.Module):
    """`a` and `b` read equal but distinct tensors; `c` runs twice per forward: none may share a statistic."""

    def __init__(self):
        super().__init__()
        self.a, self.b, self.c = nn.Linear(8, 8), nn.Linear(8, 8), nn.Linear(8, 8)

    def forward(self, x):
        return self.a(x) + self.b(x.clone()) + self.c(self.c(x))


def test_equal_but_distinct_inputs_and_repeated_calls_are_not_shared():
    module = _TwoInputs()
    shared = SharedStatistics({"a": 8, "b": 8, "c": 8}, lambda d: Hessian(d, torch.device("cpu")))
    with HookManager() as hooks, torch.no_grad():
        for name in "abc":
            hooks.add_forward_hook(getattr(module, name), lambda m, a, o, _n=name: shared.record(_n, a[0]))
        for _ in range(2):
            shared.weight = 1.0
            module(torch.randn(4, 8))
            shared.end_window()
    groups = shared.groups()
    assert [g.members for g in groups] == [["a"], ["b"], ["c"]]
    assert groups[2].statistic.num_tokens == 2 * 2 * 4  # both calls of c, both windows


@pytest.mark.parametrize("granularity,nm", SOLVER_CASES, ids=[f"{g}-{nm}" for g, nm in SOLVER_CASES])
def test_a_prior_scales_the_adaptive_choice(granularity, nm):
    weight, hessian = _problem()
    hessian.diagonal()[5] = 1.0
    upper = inverse_hessian_factor(hessian, 0.01)
    spec = MaskSpec(0.5, granularity, nm)
    plain = obs_prune(weight, upper, spec, block_size=32)
    flat = obs_prune(weight, upper, spec, block_size=32, prior=torch.full_like(weight, 3.0))
    assert torch.equal(plain[1], flat[1])  # a constant factor changes no choice
    protected = torch.zeros_like(weight, dtype=torch.bool)
    protected[:, ::4] = True  # one weight of every group of 4: always among the kept
    _, mask, _ = obs_prune(weight, upper, spec, block_size=32, prior=torch.where(protected, 1e30, 1.0))
    assert not (mask & protected).any()
    assert (mask.float().mean() - 0.5).abs() < 1e-6
