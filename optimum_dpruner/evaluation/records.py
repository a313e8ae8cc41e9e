"""What every task shares: its items (bundled test split or user records, a seeded subset), its result, its metrics.

A task's metrics are computed from its per-item data by `task_statistics`, the same functions that the bootstrap
resamples: `TaskResult.metrics` holds each metric and its 95% percentile bootstrap interval over items,
`{"accuracy": 0.62, "accuracy_low": 0.56, "accuracy_high": 0.68, ...}`, and `TaskResult.per_item()` is what a
paired comparison of two models needs afterwards (`optimum_dpruner.evaluation.uncertainty.paired_bootstrap`).
"""

from __future__ import annotations

import gzip
import json
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from ..data.calibration import bundled_path, load_texts
from ..errors import DataError
from .checks import positive_int
from .uncertainty import DEFAULT_RESAMPLES, Statistic, bootstrap_interval, macro_f1_statistic, mean_statistic, point_estimate

__all__ = [
    "TaskResult",
    "TASK_FIELDS",
    "TASK_METRICS",
    "TASK_LABELS",
    "load_task_records",
    "seeded_subset",
    "task_statistics",
    "task_result",
]

#: Fields each task reads from its records (`data=`).
TASK_FIELDS: dict[str, tuple[str, ...]] = {
    "pubmedqa": ("question", "contexts", "final_decision"),
    "casehold": ("citing_prompt", "holding_0", "holding_1", "holding_2", "holding_3", "holding_4", "label"),
    "billsum": ("source", "summary"),
    "pubmed_title": ("title", "abstract"),
    "billsum_title": ("source", "summary"),
    "wiki_next": ("title", "text"),
    "billsum_next": ("source",),
}

#: Each task's metrics: `(name, kind)`; kind `accuracy` and `macro_f1:<labels>` read predictions and references,
#: kind `mean` the per-item scores of that name.
TASK_METRICS: dict[str, tuple[tuple[str, str], ...]] = {
    "pubmedqa": (("accuracy", "accuracy"), ("macro_f1", "macro_f1")),
    "casehold": (("macro_f1", "macro_f1"), ("accuracy", "accuracy")),
    "billsum": (("rouge1", "mean"), ("rouge2", "mean"), ("rougeL", "mean")),
    "pubmed_title": (("accuracy", "accuracy"),),
    "billsum_title": (("accuracy", "accuracy"),),
    "wiki_next": (("accuracy", "accuracy"),),
    "billsum_next": (("accuracy", "accuracy"),),
}

#: The label set macro-F1 averages over.
TASK_LABELS: dict[str, tuple] = {"pubmedqa": ("yes", "no", "maybe"), "casehold": (0, 1, 2, 3, 4)}


def _bundled(task: str) -> list[dict]:
    """The bundled test records of `task` (see `optimum_dpruner/data/README.md`)."""

    def read(name: str) -> list[dict]:
        with gzip.open(bundled_path(name), "rt", encoding="utf-8") as f:
            return [json.loads(line) for line in f]

    def split_title(text: str, body: str) -> dict:  # the bundled corpora hold "title\nbody"
        title, _, rest = text.partition("\n")
        return {"title": title, body: rest}

    if task == "pubmed_title":
        return [split_title(r["text"], "abstract") for r in read("medical_test.jsonl.gz")]
    if task == "wiki_next":
        return [split_title(r["text"], "text") for r in read("general_test.jsonl.gz")]
    if task in ("billsum_title", "billsum_next"):
        return read("billsum_test.jsonl.gz")
    return read(f"{task}_test.jsonl.gz")


def seeded_subset(items: list, limit: int | None, seed: int) -> list:
    """`limit` items drawn at random by `seed`, in their original order (all of them when `limit` is None)."""
    positive_int("limit", limit, example=50)
    if limit is None or limit >= len(items):
        return list(items)
    return [items[i] for i in sorted(random.Random(seed).sample(range(len(items)), limit))]


def load_task_records(task: str, data: Any = None, limit: int | None = None, seed: int = 0) -> list[dict]:
    """The records of `task`: the bundled test split when `data` is None, else `data`; a seeded subset of `limit`.

    For the matching tasks (`pubmed_title`, `billsum_title`, `wiki_next`, `billsum_next`) these are the documents the items are
    built from; `limit` then applies to the items (see `optimum_dpruner.evaluation.matching`), so pass
    `limit=None` here.
    """
    if task not in TASK_FIELDS:
        raise DataError(f"task={task!r} is unknown; choose one of {', '.join(TASK_FIELDS)}.")
    positive_int("limit", limit, example=50)
    if data is None or data == f"builtin:{task}":
        records = _bundled(task)
    elif isinstance(data, (list, tuple)) and all(isinstance(r, dict) for r in data):
        records = list(data)
    else:
        loaded = load_texts(data, split="test")
        if isinstance(loaded, list):
            raise DataError(f"{task} data must be records (dicts) with fields {', '.join(TASK_FIELDS[task])}, not plain strings.")
        records = [dict(r) for r in loaded]
    if not records:
        raise DataError(f"the {task} data holds no items.")
    missing = [name for name in TASK_FIELDS[task] if name not in records[0]]
    if missing:
        raise DataError(f"{task} items need the fields {', '.join(TASK_FIELDS[task])}; missing: {', '.join(missing)}.")
    return seeded_subset(records, limit, seed)


def task_statistics(task: str, per_item: dict[str, Sequence]) -> dict[str, Statistic]:
    """The bootstrap statistic of each metric of `task`, from per-item data (`TaskResult.per_item()`)."""
    statistics: dict[str, Statistic] = {}
    for name, kind in TASK_METRICS[task]:
        if kind == "accuracy":
            statistics[name] = mean_statistic([p == r for p, r in zip(per_item["predictions"], per_item["references"])])
        elif kind == "macro_f1":
            statistics[name] = macro_f1_statistic(per_item["predictions"], per_item["references"], TASK_LABELS[task])
        else:
            statistics[name] = mean_statistic(per_item[name])
    return statistics


@dataclass
class TaskResult:
    """Metrics of one task with their 95% bootstrap intervals, and the items' predictions and references.

    `metrics[name]` is the metric on the evaluated items; `metrics[name + "_low"]` and `metrics[name + "_high"]`
    the percentile bootstrap interval over items. `item_scores` holds per-item values of mean-type metrics
    (BillSum's ROUGE).
    """

    task: str
    metrics: dict[str, float]
    num_items: int
    predictions: list = field(default_factory=list)
    references: list = field(default_factory=list)
    item_scores: dict[str, list[float]] = field(default_factory=dict)

    @property
    def intervals(self) -> dict[str, tuple[float, float]]:
        """`{metric: (low, high)}`."""
        return {name: (self.metrics[f"{name}_low"], self.metrics[f"{name}_high"]) for name, _ in TASK_METRICS[self.task]}

    def per_item(self) -> dict[str, list]:
        """What `task_statistics` needs: predictions and references, or the per-item scores of mean-type metrics."""
        kinds = {kind for _, kind in TASK_METRICS[self.task]}
        out = {"predictions": self.predictions, "references": self.references} if kinds - {"mean"} else {}
        return {**out, **self.item_scores}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def task_result(
    task: str,
    predictions: list,
    references: list,
    item_scores: dict[str, list[float]] | None = None,
    seed: int = 0,
    resamples: int = DEFAULT_RESAMPLES,
) -> TaskResult:
    """A `TaskResult` with every metric of `task` and its percentile bootstrap interval (`resamples`, `seed`)."""
    result = TaskResult(task, {}, len(references), predictions, references, dict(item_scores or {}))
    for name, statistic in task_statistics(task, result.per_item()).items():
        low, high = bootstrap_interval(statistic, result.num_items, resamples, seed=seed)
        result.metrics.update({name: point_estimate(statistic, result.num_items), f"{name}_low": low, f"{name}_high": high})
    return result

