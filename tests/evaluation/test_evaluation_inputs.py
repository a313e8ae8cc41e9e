"""Bad evaluation input gives one clear error, and a model with few positions is evaluated within them (issue 14).

Every case here is a row of docs/bad-input.md, section "Evaluation".
"""

from __future__ import annotations

import pytest
import torch

from optimum_dpruner.errors import ConfigError, DataError
from optimum_dpruner.evaluation import evaluate_perplexity, evaluate_task, load_task_records, perplexity


@pytest.fixture
def short_gpt2(tokenizer):
    """A tiny random GPT-2 with 64 positions (learned position embeddings: index 64 does not exist)."""
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    config = GPT2Config(n_positions=64, n_embd=64, n_layer=2, n_head=4, vocab_size=len(tokenizer), bos_token_id=None, eos_token_id=None)
    return GPT2LMHeadModel(config).eval()


def test_perplexity_windows_fit_the_model_s_positions(short_gpt2, tokenizer):
    result = evaluate_perplexity(short_gpt2, tokenizer, "builtin:general", limit=3, progress=False)
    assert (result.window, result.stride, result.windows) == (64, 64, 3)
    assert result.window_tokens == [63, 63, 63] and result.low <= result.perplexity <= result.high
    with pytest.raises(ConfigError, match=r"^window=128 exceeds the model's 64 positions; pass window=64 or less\.$"):
        perplexity(short_gpt2, tokenizer, "builtin:general", window=128, limit=1, progress=False)


def test_tasks_fit_the_model_s_positions(short_gpt2, tokenizer):
    summary = evaluate_task(short_gpt2, tokenizer, "billsum", limit=1, progress=False)  # chat template: 42 + 11 + 11
    assert summary.num_items == 1 and 0 <= summary.metrics["rouge1"] <= 1
    for task in ("pubmedqa", "casehold", "pubmed_title", "billsum_title", "wiki_next"):
        assert evaluate_task(short_gpt2, tokenizer, task, limit=2, progress=False).num_items == 2
    with pytest.raises(ConfigError, match="max_length=1024 exceeds the model's 64 positions"):
        evaluate_task(short_gpt2, tokenizer, "billsum", limit=1, max_length=1024, progress=False)
    with pytest.raises(DataError, match="max_new_tokens=40; raise max_length"):
        evaluate_task(short_gpt2, tokenizer, "billsum", limit=1, max_new_tokens=40, progress=False)
    with pytest.raises(ConfigError, match="max_length=100 exceeds the model's 64 positions"):
        evaluate_task(short_gpt2, tokenizer, "pubmedqa", limit=1, max_length=100, progress=False)


BAD_ARGUMENTS = [
    ("stride-0", {"stride": 0}, r"^stride=0 must be a positive int; pass e\.g\. stride=32\.$"),
    ("stride-over-window", {"stride": 64}, r"^stride=64 exceeds window=32; pass a stride in \[1, 32\]\.$"),
    ("limit-negative", {"limit": -1}, r"^limit=-1 must be a positive int \(or None\); pass e\.g\. limit=8\.$"),
    ("limit-string", {"limit": "5"}, r"^limit='5' is a str; pass a positive int \(or None\), limit=5\.$"),
    ("window-0", {"window": 0}, r"^window=0 must be a positive int; pass e\.g\. window=512\.$"),
    ("window-float", {"window": 51.2}, r"^window=51\.2 is a float; pass a positive int, e\.g\. window=512\.$"),
]


@pytest.mark.parametrize("kwargs,message", [(k, m) for _, k, m in BAD_ARGUMENTS], ids=[i for i, _, _ in BAD_ARGUMENTS])
def test_bad_perplexity_arguments_name_the_argument_and_the_fix(tiny_llama, tokenizer, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        perplexity(tiny_llama, tokenizer, "builtin:general", **{"window": 32, **kwargs}, progress=False)


@pytest.mark.parametrize("limit,message", [("5", r"limit='5' is a str; pass a positive int \(or None\), limit=5\."),
                                           (-1, r"limit=-1 must be a positive int \(or None\)"), (2.5, "limit=2.5 is a float")])
def test_bad_task_limits_name_the_argument_and_the_fix(tiny_llama, tokenizer, limit, message):
    with pytest.raises(ConfigError, match=message):
        evaluate_task(tiny_llama, tokenizer, "pubmedqa", limit=limit, progress=False)
    with pytest.raises(ConfigError, match=message):
        load_task_records("casehold", limit=limit)


def test_bad_task_records_are_one_line_errors(tiny_llama, tokenizer):
    with pytest.raises(DataError, match=r"final_decision='perhaps'; use one of yes, no, maybe\."):
        evaluate_task(tiny_llama, tokenizer, "pubmedqa", data=[{"question": "q", "contexts": ["c"], "final_decision": "perhaps"}])
    with pytest.raises(DataError, match="at least 4 documents"):
        evaluate_task(tiny_llama, tokenizer, "pubmed_title", data=[{"title": "t", "abstract": "a"}] * 3)
