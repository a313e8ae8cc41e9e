"""Greedy continuations of plain-text prompts: a look at what a model writes, beside what its numbers say.

The prompt is encoded as plain text (no chat template), preceded by the BOS token by the rule perplexity and
calibration windows follow (`optimum_dpruner.data.calibration.window_bos_id`), and continued greedily
(`do_sample=False`, one beam) by transformers' `generate`; only the new text is returned.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..data.calibration import window_bos_id
from ..errors import ConfigError
from .checks import model_positions, positive_int
from .scoring import greedy_generate, pad_token_id, stop_token_ids, text_ids

__all__ = ["generate_samples", "check_prompts", "card_samples", "DEFAULT_MAX_NEW_TOKENS"]

#: new tokens of a continuation unless asked otherwise: a sentence or two
DEFAULT_MAX_NEW_TOKENS = 32


def check_prompts(prompts: str | Sequence[str]) -> list[str]:
    """`prompts` as a list of texts; `ConfigError` for an empty list, a text that is empty or blank, or a non-text."""
    prompts = [prompts] if isinstance(prompts, str) else list(prompts)
    if not prompts:
        raise ConfigError("prompts=[] holds no prompt; pass a text for the model to continue, e.g. 'The patient was'.")
    for prompt in prompts:
        if not isinstance(prompt, str):
            raise ConfigError(f"prompt={prompt!r} is a {type(prompt).__name__}, not a text; pass a string, e.g. "
                              "prompt='The patient was'.")
        if not prompt.strip():
            raise ConfigError(f"prompt={prompt!r} is empty; pass a text for the model to continue, e.g. "
                              "prompt='The patient was'.")
    return prompts


def generate_samples(
    model,
    tokenizer,
    prompts: str | Sequence[str],
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
    add_bos: str | bool = "auto",
    progress: bool = False,
) -> list[str]:
    """Greedy continuation of each prompt by `model`: deterministic, the same as `model.generate(do_sample=False)`.

    Each prompt is generated alone (no padding), so its continuation does not depend on the other prompts.

    Args:
        model: a causal LM (pruned or not).
        tokenizer: its tokenizer.
        prompts (`str` or `list[str]`): the text(s) to continue, encoded as plain text (no chat template).
        max_new_tokens (`int`, *optional*, defaults to 32): tokens to generate at most; a continuation ends early at
            the model's end-of-sequence token.
        add_bos (`str` or `bool`, *optional*, defaults to `"auto"`): put the tokenizer's BOS before each prompt:
            `"auto"` when the tokenizer adds one to an encoded text, `True` always, `False` never (the rule of
            perplexity windows, `optimum_dpruner.data.calibration.window_bos_id`).
        progress (`bool`, *optional*, defaults to `False`): show a progress bar.

    Returns:
        `list[str]`: one continuation per prompt, the prompt left out, special tokens skipped (a leading space or
        line break is kept: `prompt + continuation` is the text the model wrote).

    Raises:
        `ConfigError`: a prompt is empty or not a text; `max_new_tokens` is not a positive int; a prompt and
        `max_new_tokens` together exceed the model's positions.

    Example:

    ```python
    >>> generate_samples(model, tokenizer, "The patient was admitted with", max_new_tokens=16)
    [' a fever and ...']
    ```
    """
    prompts = check_prompts(prompts)
    if tokenizer is None:
        raise ConfigError("tokenizer=None: the prompts need the model's tokenizer to be encoded; pass it.")
    positive_int("max_new_tokens", max_new_tokens, allow_none=False, example=DEFAULT_MAX_NEW_TOKENS)
    bos = window_bos_id(tokenizer, add_bos)
    encoded = [([] if bos is None else [bos]) + text_ids(tokenizer, prompt) for prompt in prompts]
    limit = model_positions(model)
    longest = max(len(ids) for ids in encoded)
    if limit is not None and longest + max_new_tokens > limit:
        raise ConfigError(f"a prompt of {longest} tokens and max_new_tokens={max_new_tokens} exceed the model's {limit} "
                          f"positions; shorten the prompt or pass max_new_tokens={max(limit - longest, 1)} or less.")
    generated = greedy_generate(model, encoded, max_new_tokens, pad_token_id(tokenizer), stop_token_ids(model, tokenizer),
                                batch_size=1, progress=progress, desc="generate")
    return [tokenizer.decode(ids, skip_special_tokens=True) for ids in generated]


def card_samples(model, tokenizer, sample_prompt: str | None) -> list[dict] | None:
    """What `save_pretrained(sample_prompt=...)` puts on the model card: the model's greedy continuation of
    `sample_prompt` as `[{"prompt", "continuation", "max_new_tokens"}]`; `None` (nothing generated) without a prompt."""
    if sample_prompt is None:
        return None
    continuation = generate_samples(model, tokenizer, sample_prompt)[0]
    return [{"prompt": sample_prompt, "continuation": continuation, "max_new_tokens": DEFAULT_MAX_NEW_TOKENS}]
