"""The two ways a task asks a causal LM: log-likelihood of a continuation, and greedy generation.

Both take token ids (the tasks build them, so that truncation cuts the document, never the instruction), run in
batches with left padding and explicit position ids (so a row's result does not depend on its batch), and put
inputs on the device of the model's input embeddings.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from tqdm.auto import tqdm

from ..errors import DataError

__all__ = ["continuation_logprobs", "greedy_generate", "pad_token_id"]


def pad_token_id(tokenizer) -> int:
    """The tokenizer's pad id, else its eos id, else 0 (padded positions are masked out either way)."""
    for value in (tokenizer.pad_token_id, tokenizer.eos_token_id):
        if value is not None:
            return int(value)
    return 0


def _left_pad(rows: Sequence[Sequence[int]], pad_id: int, device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, width - len(row) :] = torch.tensor(row, dtype=torch.long)
        mask[i, width - len(row) :] = 1
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    return ids.to(device), mask.to(device), positions.to(device)


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
    pad_id: int = 0,
    batch_size: int = 8,
    max_length: int = 2048,
    progress: bool = True,
    desc: str = "log-likelihood",
) -> list[tuple[float, int]]:
    """Log-probability of each continuation given its context: `[(sum of token log-probs, token count), ...]`.

    Args:
        model: a causal LM.
        contexts: token ids of each context (may be empty only if the continuation has 2+ tokens).
        continuations: token ids of each continuation (at least one token).
        pad_id (`int`, *optional*): id used for padding (masked out).
        batch_size (`int`, *optional*, defaults to 8): sequences per forward pass.
        max_length (`int`, *optional*, defaults to 2048): longer inputs lose their *oldest* context tokens.
        progress (`bool`, *optional*, defaults to `True`): show a progress bar.
    """
    if len(contexts) != len(continuations):
        raise ValueError(f"got {len(contexts)} contexts for {len(continuations)} continuations; pass one per continuation.")
    # requests with the same input (e.g. one-token answers after one prompt) share a forward pass
    unique: dict[tuple[int, ...], int] = {}
    inputs: list[list[int]] = []
    needed: list[int] = []  # positions (from the end) whose logits each unique input must keep
    requests: list[list[int]] = []  # request indices of each unique input
    for index, (context, continuation) in enumerate(zip(contexts, continuations)):
        if not continuation:
            raise DataError("an empty continuation has no likelihood; every answer must have at least one token.")
        full = list(context) + list(continuation)
        if len(full) < 2:
            raise DataError("a one-token continuation needs a context of at least one token.")
        if len(continuation) > max_length:
            raise DataError(f"a continuation of {len(continuation)} tokens exceeds max_length={max_length}; raise max_length.")
        key = tuple(full[:-1][-max_length:])
        if key not in unique:
            unique[key] = len(inputs)
            inputs.append(list(key))
            needed.append(0)
            requests.append([])
        u = unique[key]
        needed[u] = max(needed[u], len(continuation))
        requests[u].append(index)
    device = model.get_input_embeddings().weight.device
    results: list[tuple[float, int]] = [(0.0, 0)] * len(contexts)
    was_training = model.training
    model.eval()
    try:
        batches = _batches([len(x) for x in inputs], batch_size)
        for batch in tqdm(batches, desc=desc, disable=not progress, leave=False):
            keep = max(needed[u] for u in batch)
            ids, mask, positions = _left_pad([inputs[u] for u in batch], pad_id, device)
            logits = model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=False, logits_to_keep=keep).logits
            log_probs = torch.log_softmax(logits[:, -keep:].float(), dim=-1)
            for row, u in enumerate(batch):
                for index in requests[u]:
                    n = len(continuations[index])
                    target = torch.tensor(continuations[index], dtype=torch.long, device=log_probs.device)
                    # left padding: every row ends at the last position, so the last n predict the continuation
                    token_log_probs = log_probs[row, keep - n :].gather(1, target.unsqueeze(1)).squeeze(1)
                    results[index] = (float(token_log_probs.sum()), n)
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
            ids, mask, _ = _left_pad([prompts[i] for i in batch], pad_id, device)
            generated = model.generate(input_ids=ids, attention_mask=mask, generation_config=config)
            for row, i in enumerate(batch):
                new = generated[row, ids.shape[1] :].tolist()
                cut = next((k for k, token in enumerate(new) if token in stop), len(new))
                outputs[i] = new[:cut]
    finally:
        model.train(was_training)
    return outputs
