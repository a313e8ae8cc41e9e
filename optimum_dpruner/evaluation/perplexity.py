"""Strided perplexity of causal LMs, pruned or not: sliding windows, loss only on the tokens each window adds.

`evaluate_perplexity` also returns the per-window sums and a bootstrap interval over windows (or over documents,
which is honest where one document spans many windows); `perplexity` the number.
"""

from __future__ import annotations

import bisect
import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import torch
from tqdm.auto import tqdm

from ..data.calibration import iter_texts, load_texts, window_bos_id
from ..errors import ConfigError, DataError, DPrunerWarning
from ..tables import format_table
from .checks import fit_to_model, positive_int
from .scoring import text_ids
from .uncertainty import DEFAULT_RESAMPLES, bootstrap_interval, group_sums, perplexity_statistic

__all__ = ["perplexity", "evaluate_perplexity", "PerplexityResult", "perplexities", "format_comparison", "tokenize_corpus",
           "tokenize_documents", "window_starts", "RESAMPLING_UNITS"]

#: what a perplexity interval resamples: windows as if independent, or documents with all their windows
RESAMPLING_UNITS = ("windows", "documents")


def tokenize_documents(source: Any, tokenizer, text_column: str = "text", max_tokens: int | None = None) -> tuple[torch.Tensor, list[int]]:
    """Tokenise a corpus in its own order, documents joined by a blank line, up to `max_tokens` tokens.

    Returns:
        `tuple[torch.Tensor, list[int]]`: 1-D long tensor of token ids, and the position of each document's first
        token (a document is a non-empty text of `source`; one that `max_tokens` cuts off entirely is left out).
    """
    separator = text_ids(tokenizer, "\n\n")
    ids: list[int] = []
    starts: list[int] = []
    for text in iter_texts(load_texts(source, split="test"), text_column):
        if not isinstance(text, str) or not text.strip():
            continue
        if ids:
            ids.extend(separator)
        starts.append(len(ids))
        ids.extend(text_ids(tokenizer, text))
        if max_tokens is not None and len(ids) >= max_tokens:
            break
    if max_tokens is not None:
        ids = ids[:max_tokens]
        starts = [s for s in starts if s < len(ids)]
    if len(ids) < 2:
        raise DataError(f"the evaluation texts hold {len(ids)} tokens; perplexity needs at least 2.")
    return torch.tensor(ids, dtype=torch.long), starts


def tokenize_corpus(source: Any, tokenizer, text_column: str = "text", max_tokens: int | None = None) -> torch.Tensor:
    """`tokenize_documents`'s token ids alone: a 1-D long tensor."""
    return tokenize_documents(source, tokenizer, text_column, max_tokens)[0]


def window_starts(length: int, span: int, stride: int) -> list[int]:
    """Where each window of `span` text tokens begins in a text of `length` tokens, `stride` apart; the last window
    reaches the end of the text."""
    starts = list(range(0, max(length - span, 0) + 1, stride))
    if starts[-1] + span < length:
        starts.append(starts[-1] + stride)
    return starts


@dataclass
class PerplexityResult:
    """Strided perplexity with its per-window parts and a 95% percentile bootstrap interval.

    `perplexity` is exp(sum(window_nll) / sum(window_tokens)); `low` / `high` resample what `resample_by` names:
    whole windows, or whole documents with all their windows (the ratio of the resampled sums; see
    `optimum_dpruner.evaluation.uncertainty`). `window_nll[i]` is the summed negative log-likelihood (nats) of the
    `window_tokens[i]` tokens that window `i` scores; `window_documents[i]` is the index of the document (the
    non-empty text of the source, in its order) that holds the first token window `i` scores.
    """

    perplexity: float
    low: float
    high: float
    window_nll: list[float] = field(default_factory=list)
    window_tokens: list[int] = field(default_factory=list)
    window: int = 0
    stride: int = 0
    window_documents: list[int] = field(default_factory=list)
    resample_by: str = "windows"

    @property
    def windows(self) -> int:
        return len(self.window_tokens)

    @property
    def documents(self) -> int:
        """How many documents own a window (short documents that no window starts in own none)."""
        return len(set(self.window_documents))

    @property
    def tokens(self) -> int:
        return sum(self.window_tokens)


@torch.no_grad()
def evaluate_perplexity(
    model,
    tokenizer,
    source: Any,
    window: int | None = None,
    stride: int | None = None,
    limit: int | None = None,
    text_column: str = "text",
    progress: bool = True,
    add_bos: str | bool = "auto",
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    spread: bool = False,
    resample_by: str = "windows",
) -> PerplexityResult:
    """Strided perplexity: sliding windows of `window` tokens moved by `stride`, loss only on new tokens.

    With a BOS token (`add_bos`), every window is the BOS followed by `window - 1` text tokens; the BOS is never
    scored and the first text token is scored too (predicted from the BOS), so every text token counts once.

    Args:
        model: a causal LM.
        tokenizer: its tokenizer.
        source: evaluation texts (anything `load_texts` accepts; `builtin:<name>` reads the test split).
        window (`int`, *optional*): tokens per forward pass, the BOS included; defaults to 512, or the model's
            maximum positions when it has fewer. A window past them is an error.
        stride (`int`, *optional*): step between windows, in text tokens; defaults to the text tokens a window
            holds (`window`, or `window - 1` with a BOS: non-overlapping).
        limit (`int`, *optional*): evaluate at most this many windows (the first ones, unless `spread`).
        text_column (`str`, *optional*, defaults to `"text"`): column holding the text.
        progress (`bool`, *optional*, defaults to `True`): show a progress bar.
        add_bos (`str` or `bool`, *optional*, defaults to `"auto"`): start every window with the tokenizer's BOS:
            `"auto"` when the tokenizer adds one to an encoded text (as lm-evaluation-harness does), `True` always,
            `False` never (see `optimum_dpruner.data.calibration.window_bos_id`).
        resamples (`int`, *optional*, defaults to `DEFAULT_RESAMPLES`): bootstrap resamples of the interval.
        seed (`int`, *optional*, defaults to 0): seed of the bootstrap.
        spread (`bool`, *optional*, defaults to `False`): with `limit`, take windows evenly spaced over the whole
            text (every document has its share) instead of the first ones.
        resample_by (`str`, *optional*, defaults to `"windows"`): what the interval resamples: `"windows"`, as
            if they were independent, or `"documents"`: each window belongs to the document (a non-empty text of
            `source`: a row, not necessarily a whole article) its first scored token is in, and a resampled
            document brings all its windows. Where documents span many windows (Wikipedia articles: ~15 windows of
            512 tokens each) windows are not independent, and the window interval is too narrow: 2.2-3.0x narrower
            than the document one on the bundled Wikipedia test set (`benchmarks/results/window_dependence.md`);
            where documents are shorter than a window nearly every window has its own and the two coincide.
            Windows from fewer than 2 documents are an error (`limit` without `spread` keeps the first windows,
            often of one document); from fewer than 10, a warning.

    Returns:
        `PerplexityResult`: exp(mean negative log-likelihood over every scored token), its interval, and the
        per-window sums with each window's document.
    """
    if resample_by not in RESAMPLING_UNITS:
        raise ConfigError(f"resample_by={resample_by!r} must be one of {', '.join(map(repr, RESAMPLING_UNITS))}.")
    window = fit_to_model(model, "window", window, default=512)
    bos = window_bos_id(tokenizer, add_bos)
    span = window - (bos is not None)  # text tokens per window
    if span < 1:
        raise ConfigError(f"window={window} leaves no room for text after the BOS token; use window >= 2 or add_bos=False.")
    stride = span if stride is None else positive_int("stride", stride, allow_none=False, example=span)
    if stride > span and bos is None:
        raise ConfigError(f"stride={stride} exceeds window={window}; pass a stride in [1, {window}].")
    if stride > span:
        raise ConfigError(f"stride={stride} must be in [1, {span}]: window={window} holds a BOS and {span} text tokens; "
                          "lower stride or pass add_bos=False.")
    positive_int("limit", limit)
    max_tokens = None if limit is None or spread else span + (limit - 1) * stride
    ids, document_starts = tokenize_documents(source, tokenizer, text_column, max_tokens)
    prefix = ids.new_tensor([] if bos is None else [bos])
    device = model.get_input_embeddings().weight.device
    starts = window_starts(len(ids), span, stride)
    if limit is not None and spread:
        step = max(len(starts) / limit, 1)
        starts = [starts[int(k * step)] for k in range(min(limit, len(starts)))]
    elif limit is not None:
        starts = starts[:limit]
    window_nll, window_tokens, window_documents, scored_until = [], [], [], 0
    was_training = model.training
    model.eval()
    try:
        for begin in tqdm(starts, desc="perplexity", disable=not progress, leave=False):
            text = ids[begin : begin + span]
            chunk = torch.cat([prefix, text]).unsqueeze(0).to(device)
            logits = model(input_ids=chunk, use_cache=False).logits.float()
            log_probs = torch.log_softmax(logits[0, :-1], dim=-1)
            nll = -log_probs.gather(1, chunk[0, 1:].unsqueeze(1)).squeeze(1)
            # nll[i] scores chunk position i + 1, i.e. text token p = begin + i + 1 - len(prefix); score only new
            # ones (the first text token of a window is scorable only after a BOS)
            first_new = max(scored_until, begin + 1 - len(prefix))
            new = nll[first_new - begin - 1 + len(prefix) :]
            window_nll.append(float(new.sum()))
            window_tokens.append(new.numel())
            window_documents.append(bisect.bisect_right(document_starts, first_new) - 1)
            scored_until = begin + len(text)
    finally:
        model.train(was_training)
    units = (window_nll, window_tokens)
    if resample_by == "documents":
        units = group_sums(window_documents, window_nll, window_tokens)
        _check_documents(len(units[1]), limit, spread)
    low, high = bootstrap_interval(perplexity_statistic(*units), len(units[1]), resamples, seed=seed)
    value = math.exp(sum(window_nll) / sum(window_tokens))
    return PerplexityResult(value, low, high, window_nll, window_tokens, window, stride, window_documents, resample_by)


#: fewer documents than this owning a window make a document interval rough: a warning says so
FEW_DOCUMENTS = 10


def _check_documents(documents: int, limit: int | None, spread: bool) -> None:
    hint = "evaluate more windows or all of them" + ("" if spread or limit is None else ", or spread them (spread=True)")
    if documents < 2:
        raise DataError(f"the windows come from {documents} document; resample_by='documents' needs at least 2 ({hint}).")
    if documents < FEW_DOCUMENTS:
        warnings.warn(f"the windows come from {documents} documents; an interval over so few is rough ({hint}).",
                      DPrunerWarning, stacklevel=4)  # the caller of evaluate_perplexity (behind torch.no_grad's wrapper)


def perplexity(model, tokenizer, source: Any, window: int | None = None, stride: int | None = None, limit: int | None = None,
               text_column: str = "text", progress: bool = True, add_bos: str | bool = "auto") -> float:
    """Strided perplexity as a number: `evaluate_perplexity(...).perplexity` (same arguments; no interval).

    Returns:
        `float`: exp(mean negative log-likelihood over every scored token).
    """
    return evaluate_perplexity(model, tokenizer, source, window, stride, limit, text_column, progress, add_bos).perplexity


def perplexities(model, tokenizer, sets: dict[str, Any], window: int | None = None, limit: int | None = 8, progress: bool = True,
                 add_bos: str | bool = "auto") -> dict[str, float]:
    """Perplexity on several corpora: `{label: source}` -> `{label: ppl}` (see `perplexity`)."""
    return {label: perplexity(model, tokenizer, src, window=window, limit=limit, progress=progress, add_bos=add_bos)
            for label, src in sets.items()}


def format_comparison(before: dict[str, float], after: dict[str, float]) -> str:
    """A before/after perplexity table as plain text."""
    rows = [(label, f"{dense:.2f}", f"{after[label]:.2f}", f"{(after[label] / dense - 1) * 100:.1f}%")
            for label, dense in before.items()]
    return format_table(rows, ("perplexity", "dense", "pruned", "change"), rule=False)
