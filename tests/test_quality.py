"""Quality claims on the real SmolLM2 and real held-out text (slow)."""

import pytest

from optimum_dpruner import DPruner, DPrunerConfig, perplexity


def _pruned_ppl(model, tokenizer, method):
    config = DPrunerConfig(method=method, num_samples=16, seq_len=256, seed=0)
    DPruner(model, tokenizer, config).prune("builtin:general", progress=False)
    return perplexity(model, tokenizer, "builtin:general", window=512, limit=4, progress=False)


@pytest.mark.slow
def test_wanda_and_sparsegpt_beat_magnitude_on_held_out_wikipedia(smollm2, _smollm2_master, tokenizer):
    import copy

    dense = perplexity(smollm2, tokenizer, "builtin:general", window=512, limit=4, progress=False)
    ppl = {m: _pruned_ppl(copy.deepcopy(_smollm2_master), tokenizer, m) for m in ("magnitude", "wanda", "sparsegpt")}
    assert dense < ppl["sparsegpt"] and dense < ppl["wanda"]
    assert ppl["wanda"] < ppl["magnitude"], ppl
    assert ppl["sparsegpt"] < ppl["magnitude"], ppl
