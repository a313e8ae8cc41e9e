import pytest
import torch

from optimum_dpruner import DPrunerConfig, DPrunerWarning
from optimum_dpruner.data.calibration import calibration_samples
from optimum_dpruner.runtime.hooks import HookManager
from optimum_dpruner.methods import SparseGPTMethod
from optimum_dpruner.methods.obs import inverse_hessian_factor
from optimum_dpruner.methods.statistics import Hessian


def test_diagonal_hessian_saliency_is_hand_checkable():
    # H = diag(a): H^-1 = diag(1/a), U = diag(1/sqrt(a)), so the saliency is W^2 * a and no update moves weights
    weight = torch.tensor([[1.0, -2.0, 3.0, 0.6], [0.25, 1.0, -1.0, 2.0]])
    a = torch.tensor([4.0, 1.0, 0.25, 9.0])
    method = SparseGPTMethod(DPrunerConfig(method="sparsegpt", damp=0.0, block_size=4), keep_saliency=True)
    hessian = Hessian(4, torch.device("cpu"))
    hessian.matrix = torch.diag(a)
    hessian.num_tokens = 1
    result = method.prune_group({"w": weight}, hessian)["w"]
    torch.testing.assert_close(result.saliency, weight.pow(2) * a)
    # block granularity = whole 4-column block: the 4 lowest of W^2 * a = [[4, 4, 2.25, 3.24], [0.25, 1, 0.25, 36]]
    assert result.mask.tolist() == [[False, False, True, False], [True, True, True, False]]
    torch.testing.assert_close(result.weight, weight.masked_fill(result.mask, 0))


def test_damping_escalates_with_a_warning_on_a_singular_hessian():
    x = torch.ones(1, 4)
    hessian = x.T @ x  # rank 1: Cholesky fails without damping
    with pytest.warns(DPrunerWarning, match="retrying with damp"):
        upper = inverse_hessian_factor(hessian, damp=0.0)
    assert torch.isfinite(upper).all()


@pytest.mark.slow
def test_obs_update_lowers_the_layer_output_error(smollm2, tokenizer):
    """On SmolLM2 and real text, SparseGPT's weights beat the same mask applied without the update."""
    layer = smollm2.model.layers[4].mlp.up_proj
    samples = calibration_samples("builtin:general", tokenizer, 8, 256, seed=0)
    inputs = []
    method = SparseGPTMethod(DPrunerConfig(method="sparsegpt"))
    hessian = Hessian(layer.weight.shape[1], torch.device("cpu"))
    def record(module, args, output):  # returns None: the layer's output is left as it is
        hessian.add_batch(args[0], 1.0 / (len(samples) * 256))
        inputs.append(args[0])

    with HookManager() as hooks, torch.no_grad():
        hooks.add_forward_hook(layer, record)
        for ids in samples:
            smollm2(input_ids=ids)
    x = torch.cat([i.reshape(-1, i.shape[-1]) for i in inputs])
    dense = layer.weight.detach()
    result = method.prune_group({"up": dense}, hessian)["up"]
    err_update = (x @ (result.weight - dense).T).pow(2).sum()
    err_mask_only = (x @ (dense.masked_fill(result.mask, 0) - dense).T).pow(2).sum()
    assert (result.weight == 0).float().mean() == pytest.approx(0.5, abs=1e-3)
    assert err_update < 0.9 * err_mask_only, (err_update, err_mask_only)


def test_sparsegpt_refuses_to_leave_the_surviving_weights_alone():
    from optimum_dpruner import ConfigError, DPrunerConfig
    from optimum_dpruner.methods import build_method

    with pytest.raises(ConfigError, match=r"^reconstruction='none' does not apply to method='sparsegpt'"):
        build_method(DPrunerConfig(method="sparsegpt", reconstruction="none"))
