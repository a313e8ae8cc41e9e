"""Downstream tasks of the D-Pruner paper, zero-shot, on any causal LM (pruned or not).

- `pubmedqa`: yes/no/maybe answer to a question about a PubMed abstract, picked by log-likelihood of the answer
  word after the prompt; accuracy and macro-F1 over the three labels.
- `casehold`: which of five holdings a US court decision cites, each scored by the *mean* token log-probability
  of the holding after the citing text; accuracy and macro-F1 over the five labels.
- `billsum`: summary of a US bill by greedy generation; mean ROUGE-1/2/L F-measures (`rouge-score`).

Each task reads its bundled test split by default (`data=None`, see `optimum_dpruner/data/README.md`) or any
records with the same fields (a list of dicts, a `datasets.Dataset`, a JSON Lines file or a hub id). `limit`
evaluates a random subset of that many items chosen by `seed` (the same seed gives the same items, in source
order). Results do not depend on `batch_size` beyond float rounding.
"""

from __future__ import annotations

import gzip
import json
import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from ..data import bundled_path, load_texts
from ..errors import DataError
from .metrics import accuracy, macro_f1, rouge
from .scoring import continuation_logprobs, greedy_generate, pad_token_id

__all__ = ["TaskResult", "TASKS", "evaluate_task", "load_task_records", "pubmedqa", "casehold", "billsum"]

_FIELDS = {
    "pubmedqa": ("question", "contexts", "final_decision"),
    "casehold": ("citing_prompt", "holding_0", "holding_1", "holding_2", "holding_3", "holding_4", "label"),
    "billsum": ("source", "summary"),
}
PUBMEDQA_LABELS = ("yes", "no", "maybe")


@dataclass
class TaskResult:
    """Metrics of one task, with the items' predictions and references (in the order evaluated)."""

    task: str
    metrics: dict[str, float]
    num_items: int
    predictions: list = field(default_factory=list)
    references: list = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_task_records(task: str, data: Any = None, limit: int | None = None, seed: int = 0) -> list[dict]:
    """The items of `task`: the bundled test split when `data` is None, else `data`; a seeded subset of `limit`."""
    if task not in _FIELDS:
        raise DataError(f"task={task!r} is unknown; choose one of {', '.join(_FIELDS)}.")
    if data is None or data == f"builtin:{task}":
        with gzip.open(bundled_path(f"{task}_test.jsonl.gz"), "rt", encoding="utf-8") as f:
            records = [json.loads(line) for line in f]
    elif isinstance(data, (list, tuple)) and all(isinstance(r, dict) for r in data):
        records = list(data)
    else:
        loaded = load_texts(data, split="test")
        if isinstance(loaded, list):
            raise DataError(f"{task} data must be records (dicts) with fields {', '.join(_FIELDS[task])}, not plain strings.")
        records = [dict(r) for r in loaded]
    if not records:
        raise DataError(f"the {task} data holds no items.")
    missing = [name for name in _FIELDS[task] if name not in records[0]]
    if missing:
        raise DataError(f"{task} items need the fields {', '.join(_FIELDS[task])}; missing: {', '.join(missing)}.")
    if limit is not None:
        if limit < 1:
            raise ValueError(f"limit={limit} must be a positive number of items (or None for all).")
        if limit < len(records):
            records = [records[i] for i in sorted(random.Random(seed).sample(range(len(records)), limit))]
    return records


def _ids(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def _max_length(model, requested: int | None) -> int:
    if requested is not None:
        return requested
    return int(min(getattr(model.config, "max_position_embeddings", 2048) or 2048, 2048))


def _pick(scores: Sequence[float]) -> int:
    """Index of the highest score; the first one on ties (deterministic)."""
    return max(range(len(scores)), key=lambda k: (scores[k], -k))


def pubmedqa(
    model, tokenizer, data: Any = None, limit: int | None = None, batch_size: int = 8, seed: int = 0,
    max_length: int | None = None, progress: bool = True,
) -> TaskResult:
    """PubMedQA (PQA-L test half by default), zero-shot: the answer word with the highest log-likelihood.

    Prompt: ``"Abstract: <contexts>\\nQuestion: <question>\\nAnswer (yes, no or maybe):"``, answers ``" yes"``,
    ``" no"``, ``" maybe"``. Metrics: `accuracy`, `macro_f1` (over yes/no/maybe).
    """
    records = load_task_records("pubmedqa", data, limit, seed)
    answers = [_ids(tokenizer, " " + label) for label in PUBMEDQA_LABELS]
    contexts, continuations = [], []
    for r in records:
        prompt = _ids(tokenizer, f"Abstract: {' '.join(r['contexts'])}\nQuestion: {r['question']}\nAnswer (yes, no or maybe):")
        for answer in answers:
            contexts.append(prompt)
            continuations.append(answer)
    scored = continuation_logprobs(model, contexts, continuations, batch_size,
                                   _max_length(model, max_length), progress, desc="pubmedqa")
    k = len(PUBMEDQA_LABELS)
    predictions = [PUBMEDQA_LABELS[_pick([s for s, _ in scored[i * k : (i + 1) * k]])] for i in range(len(records))]
    references = [r["final_decision"] for r in records]
    metrics = {"accuracy": accuracy(predictions, references), "macro_f1": macro_f1(predictions, references, PUBMEDQA_LABELS)}
    return TaskResult("pubmedqa", metrics, len(records), predictions, references)


def casehold(
    model, tokenizer, data: Any = None, limit: int | None = None, batch_size: int = 8, seed: int = 0,
    max_length: int | None = None, progress: bool = True,
) -> TaskResult:
    """CaseHOLD (5-way), zero-shot: the holding with the highest mean token log-probability after the citing text.

    The context is the citing prompt up to its ``<HOLDING>`` marker (the whole prompt when the marker is missing);
    the oldest context tokens are dropped past `max_length`. Metrics: `macro_f1` (over the five labels), `accuracy`.
    """
    records = load_task_records("casehold", data, limit, seed)
    contexts, continuations = [], []
    for r in records:
        before = r["citing_prompt"].split("<HOLDING>")[0]
        context = _ids(tokenizer, before)
        space = "" if not before or before[-1].isspace() or before[-1] == "(" else " "
        for k in range(5):
            contexts.append(context)
            continuations.append(_ids(tokenizer, space + r[f"holding_{k}"].strip()))
    scored = continuation_logprobs(model, contexts, continuations, batch_size,
                                   _max_length(model, max_length), progress, desc="casehold")
    predictions = [_pick([s / n for s, n in scored[i * 5 : (i + 1) * 5]]) for i in range(len(records))]
    references = [int(r["label"]) for r in records]
    metrics = {"macro_f1": macro_f1(predictions, references, range(5)), "accuracy": accuracy(predictions, references)}
    return TaskResult("casehold", metrics, len(records), predictions, references)


_BILLSUM_INSTRUCTION = "Summarize the following bill in a few sentences."
_SLOT = "\x00DOCUMENT\x00"


def _prompt_parts(tokenizer, chat_template: bool | None) -> tuple[list[int], list[int]]:
    """Token ids before and after the bill text, from the chat template when used."""
    use_chat = bool(getattr(tokenizer, "chat_template", None)) if chat_template is None else chat_template
    if use_chat:
        if not getattr(tokenizer, "chat_template", None):
            raise DataError("chat_template=True but the tokenizer has no chat template; pass chat_template=False.")
        rendered = tokenizer.apply_chat_template(
            [{"role": "user", "content": f"{_BILLSUM_INSTRUCTION}\n\n{_SLOT}"}], add_generation_prompt=True, tokenize=False
        )
    else:
        rendered = f"{_BILLSUM_INSTRUCTION}\n\n{_SLOT}\n\nSummary:"
    before, after = rendered.split(_SLOT)
    return _ids(tokenizer, before), _ids(tokenizer, after)


def billsum(
    model, tokenizer, data: Any = None, limit: int | None = 20, batch_size: int = 4, seed: int = 0,
    max_length: int | None = 1024, max_new_tokens: int = 128, chat_template: bool | None = None, progress: bool = True,
) -> TaskResult:
    """BillSum, zero-shot: greedy summary of each bill, scored by ROUGE-1/2/L F-measure against the reference.

    The bill text (``<SECTION-HEADER>`` markers turned into line breaks) is cut to fit `max_length` tokens with
    the instruction and `max_new_tokens`; the instruction is never cut. `chat_template=None` uses the tokenizer's
    chat template when it has one. `limit` defaults to 20 items (generation is the slowest task).
    Metrics: `rouge1`, `rouge2`, `rougeL` in [0, 1].
    """
    records = load_task_records("billsum", data, limit, seed)
    before, after = _prompt_parts(tokenizer, chat_template)
    budget = _max_length(model, max_length) - max_new_tokens - len(before) - len(after)
    if budget < 16:
        raise DataError(f"max_length={max_length} leaves {budget} tokens for the bill; raise max_length or lower max_new_tokens.")
    prompts = []
    for r in records:
        document = _ids(tokenizer, r["source"].replace(" <SECTION-HEADER> ", "\n").replace("<SECTION-HEADER>", "\n").strip())
        prompts.append(before + document[:budget] + after)
    eos = model.generation_config.eos_token_id if getattr(model, "generation_config", None) is not None else None
    generated = greedy_generate(model, prompts, max_new_tokens, pad_token_id(tokenizer),
                                eos if eos is not None else tokenizer.eos_token_id, batch_size, progress, desc="billsum")
    predictions = [tokenizer.decode(ids, skip_special_tokens=True).strip() for ids in generated]
    references = [r["summary"] for r in records]
    return TaskResult("billsum", rouge(predictions, references), len(records), predictions, references)


TASKS: dict[str, Callable[..., TaskResult]] = {"pubmedqa": pubmedqa, "casehold": casehold, "billsum": billsum}


def evaluate_task(model, tokenizer, task: str, **kwargs) -> TaskResult:
    """Run one task of `TASKS` by name; `kwargs` go to it (data, limit, batch_size, seed, ...)."""
    if task not in TASKS:
        raise DataError(f"task={task!r} is unknown; choose one of {', '.join(TASKS)}.")
    return TASKS[task](model, tokenizer, **kwargs)
