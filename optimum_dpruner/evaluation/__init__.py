"""Evaluation of causal LMs, pruned or not: strided perplexity and downstream tasks, with bootstrap intervals.

- `perplexity` / `evaluate_perplexity` / `perplexities`: sliding-window perplexity, loss only on the tokens each
  window adds (`evaluate_perplexity` adds the per-window sums and an interval over windows, or over documents);
- `evaluate_task(model, tokenizer, name)` over `TASKS`: the paper's `pubmedqa`, `casehold`, `billsum` and the
  matching tasks `pubmed_title`, `billsum_title`, `wiki_next`, `billsum_next`, each metric with a 95% bootstrap interval;
- `generate_samples(model, tokenizer, prompts)`: greedy continuations of plain-text prompts (what the model writes);
- `accuracy`, `macro_f1`, `rouge`: the metrics they report; `bootstrap_interval`, `paired_bootstrap`: intervals
  and paired comparisons of two models on the same items.
"""

from .generation import generate_samples
from .metrics import accuracy, macro_f1, rouge
from .perplexity import (
    RESAMPLING_UNITS,
    PerplexityResult,
    evaluate_perplexity,
    format_comparison,
    perplexities,
    perplexity,
    tokenize_corpus,
    tokenize_documents,
    window_starts,
)
from .records import TASK_METRICS, TaskResult, load_task_records, task_statistics
from .tasks import TASKS, billsum, casehold, evaluate_task, pubmedqa
from .matching import billsum_next, billsum_title, pubmed_title, wiki_next
from .uncertainty import PairedDifference, bootstrap_interval, group_sums, paired_bootstrap, perplexity_statistic

__all__ = [
    "perplexity",
    "evaluate_perplexity",
    "PerplexityResult",
    "perplexities",
    "format_comparison",
    "tokenize_corpus",
    "tokenize_documents",
    "window_starts",
    "RESAMPLING_UNITS",
    "accuracy",
    "macro_f1",
    "rouge",
    "generate_samples",
    "TASKS",
    "TASK_METRICS",
    "TaskResult",
    "evaluate_task",
    "load_task_records",
    "task_statistics",
    "pubmedqa",
    "casehold",
    "billsum",
    "pubmed_title",
    "billsum_title",
    "wiki_next",
    "billsum_next",
    "bootstrap_interval",
    "paired_bootstrap",
    "perplexity_statistic",
    "group_sums",
    "PairedDifference",
]
