"""Evaluation of causal LMs, pruned or not: strided perplexity and the paper's downstream tasks.

- `perplexity` / `perplexities`: sliding-window perplexity, loss only on the tokens each window adds;
- `pubmedqa`, `casehold`, `billsum` (or `evaluate_task(model, tokenizer, name)`): zero-shot tasks on bundled data;
- `accuracy`, `macro_f1`, `rouge`: the metrics they report.
"""

from .metrics import accuracy, macro_f1, rouge
from .perplexity import format_comparison, perplexities, perplexity, tokenize_corpus
from .tasks import TASKS, TaskResult, billsum, casehold, evaluate_task, load_task_records, pubmedqa

__all__ = [
    "perplexity",
    "perplexities",
    "format_comparison",
    "tokenize_corpus",
    "accuracy",
    "macro_f1",
    "rouge",
    "TASKS",
    "TaskResult",
    "evaluate_task",
    "load_task_records",
    "pubmedqa",
    "casehold",
    "billsum",
]
