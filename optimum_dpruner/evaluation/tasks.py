"""Downstream tasks, zero-shot (the D-Pruner paper's and matching tasks), on any causal LM (pruned or not).

- `pubmedqa`: yes/no/maybe answer to a question about a PubMed abstract, picked by log-likelihood of the answer
  word after the prompt; accuracy and macro-F1 over the three labels.
- `casehold`: which of five holdings a US court decision cites, each scored by the *mean* token log-probability
  of the holding after the citing text; accuracy and macro-F1 over the five labels.
- `billsum`: summary of a US bill by greedy generation; mean ROUGE-1/2/L F-measures (`rouge-score`).
- `pubmed_title`, `billsum_title`, `wiki_next`, `billsum_next`: 4-way matching tasks a small model can do
  (`optimum_dpruner.evaluation.matching`).

Every metric comes with its 95% percentile bootstrap interval over items (`metrics["accuracy_low"]`,
`metrics["accuracy_high"]`, ...; see `optimum_dpruner.evaluation.records`).

Each task reads its bundled test split by default (`data=None`, see `optimum_dpruner/data/README.md`) or any
records with the same fields (a list of dicts, a `datasets.Dataset`, a JSON Lines file or a hub id). `limit`
evaluates a random subset of that many items chosen by `seed` (the same seed gives the same items, in source
order). Results do not depend on `batch_size` beyond float rounding.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..errors import DataError
from .checks import fit_to_model, positive_int
from .choice import ChoiceItem, choice_logprobs, choose
from .matching import billsum_next, billsum_title, pubmed_title, wiki_next
from .metrics import rouge_per_item
from .records import TASK_LABELS, TaskResult, load_task_records, task_result
from .scoring import greedy_generate, pad_token_id, stop_token_ids, text_ids

__all__ = ["TaskResult", "TASKS", "evaluate_task", "load_task_records", "pubmedqa", "casehold", "billsum"]

PUBMEDQA_LABELS = TASK_LABELS["pubmedqa"]


def pubmedqa_items(records: list[dict]) -> list[ChoiceItem]:
    """PubMedQA records as multiple-choice items (the prompt `pubmedqa` documents)."""
    items = []
    for r in records:
        if r["final_decision"] not in PUBMEDQA_LABELS:
            raise DataError(f"a pubmedqa item has final_decision={r['final_decision']!r}; use one of {', '.join(PUBMEDQA_LABELS)}.")
        prompt = f"Abstract: {' '.join(r['contexts'])}\nQuestion: {r['question']}\nAnswer (yes, no or maybe):"
        items.append(ChoiceItem(prompt, tuple(" " + label for label in PUBMEDQA_LABELS), PUBMEDQA_LABELS.index(r["final_decision"])))
    return items


def casehold_items(records: list[dict]) -> list[ChoiceItem]:
    """CaseHOLD records as multiple-choice items: the citing text up to ``<HOLDING>``, the five holdings."""
    items = []
    for r in records:
        before = r["citing_prompt"].split("<HOLDING>")[0]
        space = "" if not before or before[-1].isspace() or before[-1] == "(" else " "
        items.append(ChoiceItem(before, tuple(space + r[f"holding_{k}"].strip() for k in range(5)), int(r["label"])))
    return items


def pubmedqa(
    model, tokenizer, data: Any = None, limit: int | None = None, batch_size: int = 8, seed: int = 0,
    max_length: int | None = None, progress: bool = True,
) -> TaskResult:
    """PubMedQA (PQA-L test half by default), zero-shot: the answer word with the highest log-likelihood.

    Prompt: ``"Abstract: <contexts>\\nQuestion: <question>\\nAnswer (yes, no or maybe):"``, answers ``" yes"``,
    ``" no"``, ``" maybe"``. Metrics: `accuracy`, `macro_f1` (over yes/no/maybe), each with its interval.
    """
    records = load_task_records("pubmedqa", data, limit, seed)
    items = pubmedqa_items(records)
    scores = choice_logprobs(model, tokenizer, items, None, batch_size, fit_to_model(model, "max_length", max_length, 2048),
                             progress, desc="pubmedqa")
    predictions = [PUBMEDQA_LABELS[k] for k in choose(scores, "sum")]
    return task_result("pubmedqa", predictions, [r["final_decision"] for r in records], seed=seed)


def casehold(
    model, tokenizer, data: Any = None, limit: int | None = None, batch_size: int = 8, seed: int = 0,
    max_length: int | None = None, progress: bool = True,
) -> TaskResult:
    """CaseHOLD (5-way), zero-shot: the holding with the highest mean token log-probability after the citing text.

    The context is the citing prompt up to its ``<HOLDING>`` marker (the whole prompt when the marker is missing);
    the oldest context tokens are dropped past `max_length`. Metrics: `macro_f1` (over the five labels), `accuracy`,
    each with its interval.
    """
    records = load_task_records("casehold", data, limit, seed)
    items = casehold_items(records)
    scores = choice_logprobs(model, tokenizer, items, None, batch_size, fit_to_model(model, "max_length", max_length, 2048),
                             progress, desc="casehold")
    return task_result("casehold", choose(scores, "token"), [item.label for item in items], seed=seed)


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
    return text_ids(tokenizer, before), text_ids(tokenizer, after)


def billsum(
    model, tokenizer, data: Any = None, limit: int | None = 20, batch_size: int = 4, seed: int = 0,
    max_length: int | None = None, max_new_tokens: int | None = None, chat_template: bool | None = None,
    progress: bool = True,
) -> TaskResult:
    """BillSum, zero-shot: greedy summary of each bill, scored by ROUGE-1/2/L F-measure against the reference.

    The bill text (``<SECTION-HEADER>`` markers turned into line breaks) is cut to fit `max_length` tokens with
    the instruction and `max_new_tokens`; the instruction is never cut. `max_length` defaults to 1024, or the
    model's maximum positions when it has fewer; `max_new_tokens` to 128, or half of what the instruction leaves
    when that is less. `chat_template=None` uses the tokenizer's chat template when it has one. `limit` defaults
    to 20 items (generation is the slowest task). Metrics: `rouge1`, `rouge2`, `rougeL` in [0, 1], each with its
    interval; `item_scores` holds them per item.
    """
    records = load_task_records("billsum", data, limit, seed)
    before, after = _prompt_parts(tokenizer, chat_template)
    length = fit_to_model(model, "max_length", max_length, default=1024)
    room = length - len(before) - len(after)
    max_new_tokens = min(128, room // 2) if max_new_tokens is None else positive_int("max_new_tokens", max_new_tokens, False, 128)
    budget = room - max_new_tokens
    if budget < 8 or max_new_tokens < 1:
        raise DataError(f"max_length={length} leaves {budget} tokens for the bill after the {len(before) + len(after)}-token "
                        f"instruction and max_new_tokens={max_new_tokens}; raise max_length (up to the model's positions) "
                        "or lower max_new_tokens.")
    prompts = []
    for r in records:
        document = text_ids(tokenizer, r["source"].replace(" <SECTION-HEADER> ", "\n").replace("<SECTION-HEADER>", "\n").strip())
        prompts.append(before + document[:budget] + after)
    generated = greedy_generate(model, prompts, max_new_tokens, pad_token_id(tokenizer), stop_token_ids(model, tokenizer),
                                batch_size, progress, desc="billsum")
    predictions = [tokenizer.decode(ids, skip_special_tokens=True).strip() for ids in generated]
    references = [r["summary"] for r in records]
    return task_result("billsum", predictions, references, rouge_per_item(predictions, references), seed=seed)


TASKS: dict[str, Callable[..., TaskResult]] = {
    "pubmedqa": pubmedqa,
    "casehold": casehold,
    "billsum": billsum,
    "pubmed_title": pubmed_title,
    "billsum_title": billsum_title,
    "wiki_next": wiki_next,
    "billsum_next": billsum_next,
}


def evaluate_task(model, tokenizer, task: str, **kwargs) -> TaskResult:
    """Run one task of `TASKS` by name; `kwargs` go to it (data, limit, batch_size, seed, ...)."""
    if task not in TASKS:
        raise DataError(f"task={task!r} is unknown; choose one of {', '.join(TASKS)}.")
    return TASKS[task](model, tokenizer, **kwargs)
