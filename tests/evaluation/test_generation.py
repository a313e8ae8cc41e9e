"""Greedy continuations: what `model.generate(do_sample=False)` gives, without the prompt, with the BOS rule of perplexity."""

from __future__ import annotations

import pytest
import torch

from bos_tokenizer import bos_tokenizer
from optimum_dpruner import generate_samples
from optimum_dpruner.errors import ConfigError

PROMPTS = ["The patient was admitted with", "The court held that"]


def _generate(model, ids: list[int], max_new_tokens: int) -> list[int]:
    """transformers' own greedy decoding of `ids`, the new tokens only."""
    prompt = torch.tensor([ids])
    return model.generate(input_ids=prompt, attention_mask=torch.ones_like(prompt), do_sample=False,
                          max_new_tokens=max_new_tokens)[0, len(ids) :].tolist()


def test_continuations_are_greedy_deterministic_and_leave_the_prompt_out(tiny_llama, tokenizer):
    samples = generate_samples(tiny_llama, tokenizer, PROMPTS, max_new_tokens=6)
    assert samples == generate_samples(tiny_llama, tokenizer, PROMPTS, max_new_tokens=6)  # deterministic
    assert generate_samples(tiny_llama, tokenizer, PROMPTS[1], max_new_tokens=6) == samples[1:]  # alone = in a list
    for prompt, sample in zip(PROMPTS, samples):
        ids = tokenizer(prompt)["input_ids"]  # SmolLM2's tokenizer adds no BOS, and neither does "auto"
        new = _generate(tiny_llama, ids, 6)
        assert sample == tokenizer.decode(new, skip_special_tokens=True) and len(new) == 6
        assert not sample.startswith(prompt) and sample.strip()


def test_the_bos_follows_the_perplexity_rule(tiny_llama):
    tok = bos_tokenizer()  # adds a BOS to an encoded text: "auto" puts one before the prompt
    tiny_llama.resize_token_embeddings(len(tok))  # every generated id is one the tokenizer can decode
    prompt, bos = PROMPTS[0], tok.bos_token_id
    plain = tok(prompt, add_special_tokens=False)["input_ids"]
    with_bos = tok.decode(_generate(tiny_llama, [bos, *plain], 5), skip_special_tokens=True)
    without = tok.decode(_generate(tiny_llama, plain, 5), skip_special_tokens=True)
    assert with_bos != without
    assert generate_samples(tiny_llama, tok, prompt, max_new_tokens=5) == [with_bos]
    assert generate_samples(tiny_llama, tok, prompt, max_new_tokens=5, add_bos=False) == [without]


@pytest.mark.parametrize(
    ("prompts", "options", "message"),
    [
        ("", {}, r"prompt='' is empty; pass a text for the model to continue"),
        (["ok", "  \n"], {}, r"prompt='  \\n' is empty"),
        ([], {}, r"prompts=\[\] holds no prompt"),
        ([3], {}, r"prompt=3 is a int, not a text"),
        ("ok", {"max_new_tokens": 0}, r"max_new_tokens=0 must be a positive int"),
        ("ok", {"max_new_tokens": 600},
         r"a prompt of 1 tokens and max_new_tokens=600 exceed the model's 512 positions; shorten the prompt or pass "
         r"max_new_tokens=511 or less\."),
    ],
    ids=["empty", "blank", "none", "not-a-text", "no-tokens", "past-positions"],
)
def test_bad_prompts_and_lengths_are_one_line_errors(tiny_llama, tokenizer, prompts, options, message):
    with pytest.raises(ConfigError, match=message):
        generate_samples(tiny_llama, tokenizer, prompts, **options)
