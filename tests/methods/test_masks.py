import pytest
import torch

from optimum_dpruner.errors import ConfigError
from optimum_dpruner.methods.masks import lowest_k_mask, nm_mask, prune_mask


def test_layer_granularity_prunes_lowest_of_matrix():
    score = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    mask = prune_mask(score, 0.5, "layer")
    assert mask.sum() == 6
    assert mask.flatten()[:6].all() and not mask.flatten()[6:].any()


def test_row_granularity_prunes_each_row():
    score = torch.tensor([[4.0, 3.0, 2.0, 1.0], [10.0, 20.0, 30.0, 40.0]])
    mask = prune_mask(score, 0.5, "row")
    assert mask.tolist() == [[False, False, True, True], [True, True, False, False]]


def test_block_granularity_prunes_each_column_block():
    torch.manual_seed(0)
    score = torch.rand(8, 10)
    mask = prune_mask(score, 0.5, "block", block_size=4)
    assert mask[:, 0:4].sum() == 16 and mask[:, 4:8].sum() == 16 and mask[:, 8:10].sum() == 8


@pytest.mark.parametrize("n,m", [(2, 4), (4, 8), (1, 4)], ids=["2:4", "4:8", "1:4"])
def test_nm_keeps_n_highest_per_group(n, m):
    torch.manual_seed(1)
    score = torch.rand(16, 32)
    mask = nm_mask(score, n, m)
    groups_kept = (~mask).reshape(16, -1, m).sum(-1)
    assert (groups_kept == n).all()
    kept_scores = torch.where(mask, torch.full_like(score, float("inf")), score).reshape(16, -1, m).min(-1).values
    pruned_scores = torch.where(mask, score, torch.full_like(score, float("-inf"))).reshape(16, -1, m).max(-1).values
    assert (pruned_scores <= kept_scores).all()


def test_nm_needs_divisible_inputs():
    with pytest.raises(ConfigError, match="multiple of 4"):
        nm_mask(torch.rand(2, 6), 2, 4)


def test_ties_break_towards_lower_index_deterministically():
    score = torch.ones(2, 8)
    mask = lowest_k_mask(score, 3)
    assert mask.tolist() == [[True] * 3 + [False] * 5] * 2
    assert torch.equal(prune_mask(score, 0.5, "layer"), prune_mask(score.clone(), 0.5, "layer"))


def test_existing_zeros_count_towards_sparsity():
    weight = torch.randn(8, 8)
    weight[:, :2] = 0  # 25% already zero
    mask = prune_mask(weight.abs(), 0.5, "layer")
    pruned = weight.masked_fill(mask, 0)
    assert (pruned == 0).sum() == 32  # exactly 50%, not 25% + 50%


def test_zero_sparsity_prunes_nothing():
    assert not prune_mask(torch.rand(4, 4), 0.0, "row").any()
