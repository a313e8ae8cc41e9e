"""`DPruner`: what it refuses before any work, and the check that no model misses its requested sparsity."""

from __future__ import annotations

import datasets
import pytest
import torch

from optimum_dpruner import (
    ConfigError,
    DataError,
    DPruner,
    DPrunerConfig,
    DPrunerWarning,
    NumericalError,
    UnsupportedModelError,
    save_importance,
)

TINY_DATA = dict(num_samples=2, seq_len=32, domain_num_samples=1)


# ----------------------------------------------------------------------------------------------- empty data
EMPTY_DATA = [
    ("empty-list", lambda: []),
    ("empty-string", lambda: ""),
    ("blank-string", lambda: "   "),
    ("empty-dataset", lambda: datasets.Dataset.from_dict({"text": []})),
]


@pytest.mark.parametrize("make_empty", [m for _, m in EMPTY_DATA], ids=[i for i, _ in EMPTY_DATA])
@pytest.mark.parametrize("method", ["wanda", "dpruner"])
def test_empty_general_data_is_an_error_not_the_builtin_set(tiny_llama, tokenizer, method, make_empty):
    """Only None means "the default"; empty data used to calibrate silently on builtin:general."""
    pruner = DPruner(tiny_llama, tokenizer, DPrunerConfig(method=method, **TINY_DATA))
    domain = "builtin:medical" if method == "dpruner" else None
    with pytest.raises(DataError, match=r"^general_ds=.* is empty; pass calibration texts, or leave general_ds out"):
        pruner.prune(make_empty(), domain, progress=False)
    up = tiny_llama.model.layers[0].mlp.up_proj.weight
    assert up.count_nonzero() == up.numel()  # refused before any work


def test_empty_domain_data_is_named(tiny_llama, tokenizer):
    pruner = DPruner(tiny_llama, tokenizer, DPrunerConfig(**TINY_DATA))
    with pytest.raises(DataError, match=r"^domain_ds='' is empty"):
        pruner.prune(None, "", progress=False)
    with pytest.raises(DataError, match=r"^domain_ds=list of 1 texts: the texts hold \d+ tokens, fewer than one sequence"):
        pruner.prune(None, ["too short"], progress=False)


# ----------------------------------------------------------------------------------------------- wrong weights
@pytest.mark.parametrize("bad", [float("nan"), float("inf")], ids=["nan", "inf"])
@pytest.mark.parametrize("method", ["wanda", "magnitude", "sparsegpt"])
def test_non_finite_weights_are_refused_naming_the_matrix(tiny_llama, tokenizer, method, bad):
    """One NaN in up_proj used to give a model 25% sparse instead of 50%, reported as a success."""
    with torch.no_grad():
        tiny_llama.model.layers[0].mlp.up_proj.weight[3, 5] = bad
    pruner = DPruner(tiny_llama, tokenizer, DPrunerConfig(method=method, **TINY_DATA))
    with pytest.raises(UnsupportedModelError, match=r"^the weight model.layers.0.mlp.up_proj.weight holds"):
        pruner.prune(progress=False)


def test_a_run_that_misses_its_sparsity_is_refused(tiny_llama, tokenizer):
    """Finite weights, but activations that overflow: Wanda's scores turn NaN and the masks come out short."""
    with torch.no_grad():
        tiny_llama.model.layers[0].post_attention_layernorm.weight.fill_(3e38)
    pruner = DPruner(tiny_llama, tokenizer, DPrunerConfig(method="wanda", **TINY_DATA))
    with pytest.raises(NumericalError, match=r"^pruning missed sparsity=0.5 in \d+ of 14 matrices: model.layers.0.mlp"):
        pruner.prune(progress=False)
    assert pruner.result is None


@pytest.mark.parametrize("method,pattern,granularity", [
    ("magnitude", "unstructured", "layer"), ("wanda", "unstructured", "row"), ("sparsegpt", "unstructured", "row"),
    ("sparsegpt", "unstructured", "block"), ("sparsegpt", "2:4", None),
], ids=["magnitude-layer", "wanda-row", "sparsegpt-row", "sparsegpt-block", "sparsegpt-2:4"])
def test_rounding_is_not_a_miss(make_tiny, tokenizer, method, pattern, granularity):
    """Odd sparsities round per comparison group; that must pass the check (sizes 64x64, 128x64, 64x128, 32x64)."""
    sparsity = None if pattern != "unstructured" else 0.37
    config = DPrunerConfig(method=method, pattern=pattern, sparsity=sparsity, granularity=granularity, block_size=48, **TINY_DATA)
    result = DPruner(make_tiny("llama"), tokenizer, config).prune(progress=False)
    assert all(abs(m.sparsity - config.sparsity) < 0.02 for m in result.report.matrices.values())


# ----------------------------------------------------------------------------------------------- importance scores
def test_importance_from_another_model_of_the_same_shape_is_refused(make_tiny, tokenizer, tmp_path):
    config = DPrunerConfig.paper(**TINY_DATA)  # masks from the saved scores alone
    first = DPruner(make_tiny(seed=3), tokenizer, config).prune("builtin:general", "builtin:medical", progress=False)
    path = first.save_importance(tmp_path / "scores")
    # the same checkpoint in bfloat16 has the same fingerprint
    same = make_tiny(seed=3).to(torch.bfloat16)
    DPruner(same, tokenizer, config).prune(importance=path, progress=False)
    other = make_tiny(seed=4)
    with pytest.raises(ConfigError, match=r"^importance='.*' was computed on another model \(weights fingerprint"):
        DPruner(other, tokenizer, config).prune(importance=path, progress=False)
    assert other.model.layers[0].mlp.up_proj.weight.count_nonzero() == 128 * 64  # nothing pruned
    # scores saved without a fingerprint (an older version) are used, with a warning
    unsigned = save_importance(tmp_path / "old", first.importance)
    with pytest.warns(DPrunerWarning, match="records no model fingerprint"):
        DPruner(make_tiny(seed=3), tokenizer, config).prune(importance=unsigned, progress=False)


def test_importance_passed_where_it_would_be_ignored(tiny_llama, tokenizer, tmp_path):
    with pytest.raises(ConfigError, match=r"^importance= holds the scores of dpruner, which method='wanda' does not use"):
        DPruner(tiny_llama, tokenizer, DPrunerConfig(method="wanda")).prune(importance=str(tmp_path), progress=False)
    with pytest.raises(ConfigError, match=r"^importance= and calibration data were both given"):
        DPruner(tiny_llama, tokenizer, DPrunerConfig.paper()).prune("builtin:general", "builtin:medical",
                                                                    importance=str(tmp_path), progress=False)
    # the default recipe reconstructs on mixed windows: saved scores need the domain data too
    with pytest.raises(DataError, match=r"^importance= with the reconstruction pass \(the default recipe\) needs "
                                        r"domain_ds= too \(the data the scores came from\)"):
        DPruner(tiny_llama, tokenizer, DPrunerConfig()).prune(importance=str(tmp_path), progress=False)
    with pytest.raises(ConfigError, match=r"^importance=3 must be a path"):
        DPruner(tiny_llama, tokenizer, DPrunerConfig()).prune(importance=3, progress=False)


# ----------------------------------------------------------------------------------------------- config
def test_config_may_be_a_dict_and_nothing_else(tiny_llama):
    pruner = DPruner(tiny_llama, None, {"method": "magnitude", "sparsity": 0.25})
    assert pruner.config == DPrunerConfig(method="magnitude", sparsity=0.25)
    with pytest.raises(ConfigError, match=r"^unknown DPrunerConfig key 'sparsty' \(did you mean 'sparsity'\?\)"):
        DPruner(tiny_llama, None, {"sparsty": 0.25})
    with pytest.raises(ConfigError, match=r"^config='sparsity=0.5' is a str; pass a DPrunerConfig or a dict"):
        DPruner.from_pretrained(tiny_llama, config="sparsity=0.5")


def test_estimate_checks_seq_len_against_the_model(tiny_llama):
    with pytest.raises(ConfigError, match=r"^seq_len=1024 exceeds the model's limit of 512 tokens"):
        DPruner(tiny_llama, None, DPrunerConfig(method="magnitude", seq_len=1024)).estimate()
