"""Multiple choice by log-likelihood, as lm-evaluation-harness scores it: each choice is a continuation of the context.

`choice_logprobs` runs the model once per distinct context (its choices share the forward pass, see
`scoring.continuation_logprobs`) and, when asked, once more for every distinct choice after a neutral context
(the choice's log-likelihood *without* the item, for the `"pmi"` normalisation). `choose` turns those numbers
into predictions under one normalisation:

- `"sum"`: the summed token log-probability of the choice (lm-evaluation-harness `acc`);
- `"token"`: the mean log-probability per token (fair between choices of different lengths);
- `"pmi"`: the summed log-probability given the context minus the one given the neutral context, i.e. how much
  the context raises the choice (lm-evaluation-harness `acc_mutual_info`); a choice that is likely anywhere
  gains nothing from that alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import DataError
from .scoring import continuation_logprobs, text_ids

__all__ = ["ChoiceItem", "ChoiceScores", "NORMALISATIONS", "choice_logprobs", "choose", "pair_ids", "pick"]

NORMALISATIONS = ("sum", "token", "pmi")


@dataclass(frozen=True)
class ChoiceItem:
    """One multiple-choice item: the `choices` continue `context` (each carries its own leading space), `label` is right."""

    context: str
    choices: tuple[str, ...]
    label: int


@dataclass
class ChoiceScores:
    """Per item and choice: summed log-probability, token count and (for `"pmi"`) the neutral-context log-probability."""

    logprob: list[list[float]]
    tokens: list[list[int]]
    unconditional: list[list[float]] | None = None


def pair_ids(tokenizer, context: str, choice: str) -> tuple[list[int], list[int]]:
    """Token ids of `context` and of `choice` after it, split as lm-evaluation-harness splits them.

    The context's trailing whitespace moves to the choice, and the choice's ids are what follows the context's ids in
    the encoding of the whole text: a SentencePiece tokenizer (LLaMA, Mistral) encodes `" yes"` alone with an extra
    `"▁"`, which the model never sees after a context. Where the whole text's encoding does not start with the
    context's, the tail still goes to the choice (as lm-evaluation-harness does); a choice that would get no token
    that way keeps its own encoding.
    """
    stripped = context.rstrip()
    choice = context[len(stripped):] + choice
    context_ids = text_ids(tokenizer, stripped)
    tail = text_ids(tokenizer, stripped + choice)[len(context_ids):]
    return context_ids, tail if tail else text_ids(tokenizer, choice)


def choice_logprobs(
    model,
    tokenizer,
    items: Sequence[ChoiceItem],
    unconditional_context: str | None = None,
    batch_size: int = 8,
    max_length: int = 2048,
    progress: bool = True,
    desc: str = "choices",
) -> ChoiceScores:
    """Log-likelihood of every choice of every item (and after `unconditional_context` when given, for `"pmi"`).

    A context longer than `max_length` minus its longest choice loses its oldest tokens.
    """
    contexts, continuations, shape = [], [], []
    for item in items:
        if not item.choices or not 0 <= item.label < len(item.choices):
            raise DataError(f"an item has {len(item.choices)} choices and label {item.label}; the label must index a choice.")
        for choice in item.choices:
            context, continuation = pair_ids(tokenizer, item.context, choice)
            contexts.append(context)
            continuations.append(continuation)
        shape.append(len(item.choices))
    scored = continuation_logprobs(model, contexts, continuations, batch_size, max_length, progress, desc=desc)
    unconditional = None
    if unconditional_context is not None:
        distinct = sorted({tuple(c) for c in continuations})
        neutral = text_ids(tokenizer, unconditional_context)
        alone = continuation_logprobs(model, [neutral] * len(distinct), [list(c) for c in distinct], batch_size,
                                      max_length, progress, desc=desc + " (neutral)")
        by_choice = {c: s for c, (s, _) in zip(distinct, alone)}
        unconditional = _split([by_choice[tuple(c)] for c in continuations], shape)
    return ChoiceScores(_split([s for s, _ in scored], shape), _split([n for _, n in scored], shape), unconditional)


def _split(flat: list, shape: list[int]) -> list[list]:
    out, start = [], 0
    for size in shape:
        out.append(flat[start : start + size])
        start += size
    return out


def pick(scores: Sequence[float]) -> int:
    """Index of the highest score; the first one on ties (deterministic)."""
    return max(range(len(scores)), key=lambda k: (scores[k], -k))


def choose(scores: ChoiceScores, normalisation: str = "sum") -> list[int]:
    """The predicted choice of every item under `normalisation` (one of `NORMALISATIONS`)."""
    if normalisation not in NORMALISATIONS:
        raise DataError(f"normalisation={normalisation!r} is unknown; choose one of {', '.join(NORMALISATIONS)}.")
    if normalisation == "pmi" and scores.unconditional is None:
        raise DataError("normalisation='pmi' needs the neutral-context scores; pass unconditional_context to choice_logprobs.")
    predictions = []
    for i, logprobs in enumerate(scores.logprob):
        if normalisation == "sum":
            values = logprobs
        elif normalisation == "token":
            values = [s / n for s, n in zip(logprobs, scores.tokens[i])]
        else:
            values = [s - u for s, u in zip(logprobs, scores.unconditional[i])]
        predictions.append(pick(values))
    return predictions
