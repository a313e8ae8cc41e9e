"""The two ways a task asks a causal LM: log-likelihood of a continuation, and greedy generation.

Both take token ids (the tasks build them, so that truncation cuts the document, never the instruction), pass
explicit attention masks and position ids (so a row's result does not depend on its batch), and put inputs on
the device of the model's input embeddings.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from tqdm.auto import tqdm

from ..errors import DataError

__all__ = ["continuation_logprobs", "greedy_generate", "pad_token_id", "stop_token_ids", "text_ids"]


def text_ids(tokenizer, text: str) -> list[int]:
    """`text`'s token ids without special tokens (a task adds none of its own: contexts start without a BOS)."""
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def pad_token_id(tokenizer) -> int:
    """The tokenizer's pad id, else its eos id, else 0 (padded positions are masked out either way)."""
    for value in (tokenizer.pad_token_id, tokenizer.eos_token_id):
        if value is not None:
            return int(value)
    return 0


def stop_token_ids(model, tokenizer) -> int | list[int] | None:
    """Where a greedy continuation ends: the model's generation config's eos id(s), else the tokenizer's."""
    config = getattr(model, "generation_config", None)
    eos = config.eos_token_id if config is not None else None
    return eos if eos is not None else tokenizer.eos_token_id


def _left_pad(rows: Sequence[Sequence[int]], pad_id: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Ids and attention mask of `rows`, padded on the left (generate derives positions from the mask)."""
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, width - len(row) :] = torch.tensor(row, dtype=torch.long)
        mask[i, width - len(row) :] = 1
    return ids.to(device), mask.to(device)


def _batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices grouped into batches of similar length (longest first), for less padding."""
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size} must be at least 1.")
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


@torch.no_grad()
def continuation_logprobs(
    model,
    contexts: Sequence[Sequence[int]],
    continuations: Sequence[Sequence[int]],
    batch_size: int = 8,
    max_length: int = 2048,
    progress: bool = True,
    desc: str = "log-likelihood",
) -> list[tuple[float, int]]:
    """Log-probability of each continuation given its context: `[(sum of token log-probs, token count), ...]`.

    Requests that share a context (the answers of one question) share its forward pass: the context runs once
    with a KV cache, then its continuations run together on copies of that cache (one-token continuations need
    nothing more than the context's last logits). Results equal a plain forward over context + continuation up
    to float rounding.

    Args:
        model: a causal LM whose forward takes `past_key_values` and `position_ids` (every transformers LM does).
        contexts: token ids of each context (at least one token).
        continuations: token ids of each continuation (at least one token).
        batch_size (`int`, *optional*, defaults to 8): continuations of one context per forward pass.
        max_length (`int`, *optional*, defaults to 2048): longer inputs lose their *oldest* context tokens.
        progress (`bool`, *optional*, defaults to `True`): show a progress bar (one step per distinct context).
    """
    if len(contexts) != len(continuations):
        raise ValueError(f"got {len(contexts)} contexts for {len(continuations)} continuations; pass one per continuation.")
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size} must be at least 1.")
    groups: dict[tuple[int, ...], list[int]] = {}
    for index, (context, continuation) in enumerate(zip(contexts, continuations)):
        if not context or not continuation:
            raise DataError("every context and every continuation needs at least one token.")
        if len(continuation) >= max_length:
            raise DataError(f"a continuation of {len(continuation)} tokens does not fit max_length={max_length}; raise max_length.")
        groups.setdefault(tuple(context), []).append(index)
    device = model.get_input_embeddings().weight.device
    results: list[tuple[float, int]] = [(0.0, 0)] * len(contexts)
    was_training = model.training
    model.eval()
    try:
        for context, members in tqdm(groups.items(), desc=desc, disable=not progress, leave=False):
            longest = max(len(continuations[i]) for i in members)
            context = context[-(max_length - longest + 1) :]
            out = model(input_ids=torch.tensor([context], device=device), use_cache=True, logits_to_keep=1)
            first = torch.log_softmax(out.logits[0, -1].float(), dim=-1)  # predicts each continuation's first token
            for index in members:
                results[index] = (float(first[continuations[index][0]]), 1)
            # longest first, so that a batch pads its rows to similar lengths
            longer = sorted((i for i in members if len(continuations[i]) > 1), key=lambda i: (-len(continuations[i]), i))
            for start in range(0, len(longer), batch_size):
                chunk = longer[start : start + batch_size]
                tails = [continuations[i][:-1] for i in chunk]  # inputs after the context; their logits predict [1:]
                width = max(len(t) for t in tails)
                ids = torch.zeros((len(chunk), width), dtype=torch.long)
                mask = torch.zeros((len(chunk), len(context) + width), dtype=torch.long)
                mask[:, : len(context)] = 1
                for row, tail in enumerate(tails):  # right padding: padded positions come after every scored one
                    ids[row, : len(tail)] = torch.tensor(tail)
                    mask[row, len(context) : len(context) + len(tail)] = 1
                positions = torch.arange(len(context), len(context) + width).expand(len(chunk), -1)
                cache = copy.deepcopy(out.past_key_values)
                cache.batch_repeat_interleave(len(chunk))
                logits = model(input_ids=ids.to(device), attention_mask=mask.to(device), position_ids=positions.to(device),
                               past_key_values=cache, use_cache=True).logits
                log_probs = torch.log_softmax(logits.float(), dim=-1)
                for row, i in enumerate(chunk):
                    target = torch.tensor(continuations[i][1:], dtype=torch.long, device=log_probs.device)
                    rest = log_probs[row, : len(target)].gather(1, target.unsqueeze(1)).sum()
                    results[i] = (results[i][0] + float(rest), len(continuations[i]))
    finally:
        model.train(was_training)
    return results


@torch.no_grad()
def greedy_generate(
    model,
    prompts: Sequence[Sequence[int]],
    max_new_tokens: int,
    pad_id: int,
    eos_token_id: int | list[int] | None,
    batch_size: int = 4,
    progress: bool = True,
    desc: str = "generate",
) -> list[list[int]]:
    """Greedy continuation (no sampling) of each prompt; returns the new token ids, ending before the first eos."""
    from transformers import GenerationConfig

    config = GenerationConfig(
        do_sample=False, max_new_tokens=max_new_tokens, pad_token_id=pad_id, eos_token_id=eos_token_id, num_beams=1
    )
    stop = set([eos_token_id] if isinstance(eos_token_id, int) else (eos_token_id or []))
    device = model.get_input_embeddings().weight.device
    outputs: list[list[int]] = [[] for _ in prompts]
    was_training = model.training
    model.eval()
    try:
        for batch in tqdm(_batches([len(p) for p in prompts], batch_size), desc=desc, disable=not progress, leave=False):
            ids, mask = _left_pad([prompts[i] for i in batch], pad_id, device)
            generated = model.generate(input_ids=ids, attention_mask=mask, generation_config=config)
            for row, i in enumerate(batch):
                new = generated[row, ids.shape[1] :].tolist()
                cut = next((k for k, token in enumerate(new) if token in stop), len(new))
                outputs[i] = new[:cut]
    finally:
        model.train(was_training)
    return outputs
