"""Calibration mixing (general + domain windows in one statistic) and fixed-mask reconstruction."""

import pytest
import torch

from optimum_dpruner import DPruner, DPrunerConfig
from optimum_dpruner.stages import iter_target_linears
from optimum_dpruner.data.calibration import calibration_samples
from optimum_dpruner.runtime.hooks import HookManager
from optimum_dpruner.methods.statistics import Hessian, InputNorms, mixture_weights

COMMON = dict(num_samples=3, domain_num_samples=5, seq_len=64, block_size=32)


def _weights(model, config):
    return {n: m.weight.detach().clone() for n, m in iter_target_linears(model, config).items()}


def test_mixture_weights_give_each_set_its_share_per_token():
    weights = mixture_weights([64, 64], [32] * 6, 0.25)
    assert weights == [0.75 / 128] * 2 + [0.25 / 192] * 6
    assert sum(w * t for w, t in zip(weights, [64, 64] + [32] * 6)) == pytest.approx(1.0)
    generator = torch.Generator().manual_seed(0)
    general = [torch.randn(64, 8, generator=generator) for _ in range(2)]
    domain = [torch.randn(32, 8, generator=generator) * 3 for _ in range(6)]
    hessian, norms = Hessian(8, torch.device("cpu")), InputNorms(8, torch.device("cpu"))
    for x, w in zip(general + domain, weights):
        hessian.add_batch(x, w)
        norms.add_batch(x, w)
    g, d = torch.cat(general), torch.cat(domain)
    expected = 0.75 * 2 * g.T @ g / len(g) + 0.25 * 2 * d.T @ d / len(d)
    torch.testing.assert_close(hessian.value(), expected)
    torch.testing.assert_close(norms.squares, expected.diagonal() / 2)
    torch.testing.assert_close(InputNorms.from_hessian(hessian).squares, norms.squares)


@pytest.mark.parametrize("method", ["sparsegpt", "wanda"])
def test_domain_weight_0_and_1_are_the_single_set_runs(make_tiny, tokenizer, method):
    def run(data, **kw):
        config = DPrunerConfig(**{"method": method, **COMMON, **kw})
        model = DPruner(make_tiny(seed=4), tokenizer, config).prune(*data, progress=False).model
        return _weights(model, config)

    general_only = run(("builtin:general",))
    # the domain set is cut with domain_num_samples windows, so compare with a general_ds run of that size
    domain_only = run(("builtin:medical",), num_samples=COMMON["domain_num_samples"])
    assert run(("builtin:general", "builtin:medical"), domain_weight=0.0).keys() == general_only.keys()
    for name, w in run(("builtin:general", "builtin:medical"), domain_weight=0.0).items():
        assert torch.equal(w, general_only[name]), name
    for name, w in run(("builtin:general", "builtin:medical"), domain_weight=1.0).items():
        assert torch.equal(w, domain_only[name]), name
    mixed = run(("builtin:general", "builtin:medical"), domain_weight=0.5)
    assert any(not torch.equal(w, general_only[n]) and not torch.equal(w, domain_only[n]) for n, w in mixed.items())


@pytest.mark.parametrize("method,pattern", [("wanda", "unstructured"), ("wanda", "2:4"), ("magnitude", "unstructured"),
                                            ("dpruner", "unstructured")])
def test_reconstruction_keeps_the_mask_and_lowers_the_block_error(make_tiny, tokenizer, method, pattern):
    data = ("builtin:general", "builtin:medical") if method == "dpruner" else ("builtin:general",)
    fixed = dict(mask_score="importance") if method == "dpruner" else {}  # D-Pruner: the mask from I, then OBS
    plain_config = DPrunerConfig(method=method, pattern=pattern, reconstruction="none", **fixed, **COMMON)
    plain = DPruner(make_tiny(seed=5), tokenizer, plain_config).prune(*data, progress=False)
    config = DPrunerConfig(method=method, pattern=pattern, reconstruction="obs", **fixed, **COMMON)
    rebuilt = DPruner(make_tiny(seed=5), tokenizer, config).prune(
        *data, importance=plain.importance if method == "dpruner" else None, progress=False)
    dense_model = make_tiny(seed=5)
    plain_w, rebuilt_w, dense = _weights(plain.model, config), _weights(rebuilt.model, config), _weights(dense_model, config)
    for name in dense:
        assert not torch.equal(plain_w[name], rebuilt_w[name]), name  # the survivors moved
        if pattern == "2:4":
            assert ((rebuilt_w[name] == 0).reshape(-1, 4).sum(-1) >= 2).all(), name
    assert abs(rebuilt.report.sparsity - 0.5) < 0.01
    # block 0 sees the dense model's inputs in both runs: the same masks, and a lower output error on them
    windows = [calibration_samples(src, tokenizer, n, 64, seed=0) for src, n in
               zip(data, (COMMON["num_samples"], COMMON["domain_num_samples"]))]
    weights = mixture_weights(*([w.numel() for w in ws] for ws in windows), 0.5) if len(windows) == 2 else \
        [1.0 / sum(w.numel() for w in windows[0])] * len(windows[0])
    block0 = [n for n in dense if ".0." in n]
    inputs = {n: [] for n in block0}
    modules = iter_target_linears(dense_model, config)
    with HookManager() as hooks, torch.no_grad():
        for n in block0:
            hooks.add_forward_hook(modules[n], lambda m, a, o, _n=n: inputs[_n].append(a[0].reshape(-1, a[0].shape[-1])))
        for ids in [w for ws in windows for w in ws]:
            dense_model(input_ids=ids)
    for n in block0:
        assert torch.equal(plain_w[n] == 0, rebuilt_w[n] == 0), n

        def error(w):
            return sum(c * (x @ (w - dense[n]).T).pow(2).sum() for c, x in zip(weights, inputs[n]))

        assert error(rebuilt_w[n]) < error(plain_w[n]), n

