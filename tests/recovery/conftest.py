"""Fixtures of the recovery tests: tiny random models pruned by magnitude (fast), and short texts."""

from __future__ import annotations

import pytest
import torch

from optimum_dpruner import DPruner, DPrunerConfig

#: a short text repeated: a tiny random model learns it within a few steps (loss must fall)
TEXT = ("The patient was given aspirin for the pain and the fever went down by the morning. " * 30).strip()
GENERAL = ("The river runs through the old town, past the market and the church, to the sea. " * 30).strip()


@pytest.fixture
def prune_tiny(make_tiny, tokenizer):
    """`prune_tiny(pattern="unstructured", arch="llama")`: a `PruneResult` of a tiny model pruned by magnitude."""

    def make(pattern: str = "unstructured", arch: str = "llama", seed: int = 0):
        config = DPrunerConfig(method="magnitude", pattern=pattern)
        return DPruner.from_pretrained(make_tiny(arch, seed=seed), tokenizer=tokenizer, config=config).prune(progress=False)

    return make


def pruned_positions(model, names) -> dict[str, torch.Tensor]:
    return {n: model.get_submodule(n).weight.detach().eq(0).clone() for n in names}


def assert_zeros_kept(model, before: dict[str, torch.Tensor]) -> None:
    """Every position pruned before is exactly zero now."""
    for name, mask in before.items():
        weight = model.get_submodule(name).weight.detach().cpu()
        assert int(weight[mask.cpu()].ne(0).sum()) == 0, name


def assert_nm(model, names, n: int, m: int) -> None:
    for name in names:
        zeros = model.get_submodule(name).weight.detach().cpu().eq(0).reshape(-1, m).sum(dim=1)
        assert bool((zeros >= m - n).all()), name
