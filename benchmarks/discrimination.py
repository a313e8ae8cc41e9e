"""Which task metrics tell SmolLM2-135M models apart? The one discrimination test that verdicts, plots and tables read.

    python benchmarks/discrimination.py benchmarks/results/compare_medical_full.json \
        benchmarks/results/compare_legal_full.json --magnitude benchmarks/results/matching_tasks.json \
        --out benchmarks/results/discrimination.json

A task metric discriminates at this model size when, on the full test sets (every item of the compare files given),
the dense model passes both tests:

1. **above the trivial answer**: the dense model's 95% interval lies wholly above what answering without reading
   the item scores. Accuracy: always giving the answer most frequent among the items' references (never below
   chance, 1 / number of choices; PubMedQA: always "yes"). Macro-F1: chance, 1 / number of labels (a guess drawn
   with the answers' own frequencies has precision and recall equal to each answer's share, hence that macro-F1;
   always one answer scores less). ROUGE has no trivial answer (a summary must be written): the test does not apply.
2. **above a badly damaged model**: the pruned row of the same file with the highest domain perplexity (the most
   damaged model measured on the same items) scores below dense beyond the paired 95% bootstrap interval
   (dense - it wholly above 0).

A metric that fails either test stays in every table, marked † with the scores that show it (`compare.py`'s
tables, `verdict.py`'s), and no verdict counts it (`benchmarks/verdict.py`, and through it the titles of
`benchmarks/plot_tradeoff.py`). `--magnitude` adds, for information only, the paired
difference from magnitude pruning at 50% where that model was run on the very same items (`matching_tasks.json`:
its dense per-item results must equal the compare file's). Writes `--out` (JSON, what the other scripts read) and
the markdown table next to it. Nothing is evaluated: everything comes from the stored per-item results.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from compare import DOMAIN_TASKS, GENERAL_TASKS, TASK_METRICS, _paired  # noqa: E402

#: where the committed result lives; verdict.py, plot_tradeoff.py and compare.py's tables read it
DEFAULT_PATH = os.path.join(HERE, "results", "discrimination.json")
#: how many answers each task offers (macro-F1 labels, or the matching tasks' and CaseHOLD's choices)
CHOICES = {"pubmedqa": 3, "casehold": 5, "pubmed_title": 4, "billsum_title": 4, "wiki_next": 4, "billsum_next": 4}


def trivial(task: str, metric: str, per_item: dict) -> tuple[str, float] | None:
    """`(name, score)` of the best answer given without reading the item, or None where there is none (ROUGE)."""
    if task not in CHOICES or metric not in ("accuracy", "macro_f1"):
        return None
    if metric == "macro_f1":
        return "chance", 1 / CHOICES[task]
    answer, count = Counter(per_item["references"]).most_common(1)[0]
    share = count / len(per_item["references"])
    if share <= 1 / CHOICES[task]:
        return "chance", 1 / CHOICES[task]
    return (f'always "{answer}"' if isinstance(answer, str) else f"always choice {answer}"), share


def _label(row: dict) -> str:
    return f"{row['method']}/{row['calibration']}" + ("" if row["pattern"] == "unstructured" else f" at {row['pattern']}")


def judge(rows: list[dict], domain: str, magnitude: dict | None = None) -> list[dict]:
    """The test of every task metric of `domain` that the dense row holds (one entry each)."""
    dense = next(r for r in rows if r["domain"] == domain and r["method"] == "dense")
    pruned = [r for r in rows if r["domain"] == domain and r["method"] != "dense"]
    damaged = max(pruned, key=lambda r: r["domain_ppl"])
    entries = []
    for task in (*GENERAL_TASKS, *DOMAIN_TASKS[domain]):
        if task not in dense:
            continue
        for metric in TASK_METRICS[task]:
            base = trivial(task, metric, dense[task]["per_item"])
            paired = _paired(dense, damaged, task, metric)
            entry = {"domain": domain, "task": task, "metric": metric, "items": dense[task]["items"],
                     "dense": dense[task][metric], "dense_low": dense[task][f"{metric}_low"],
                     "dense_high": dense[task][f"{metric}_high"],
                     "trivial": None if base is None else base[0], "trivial_score": None if base is None else round(base[1], 4),
                     "damaged": _label(damaged), "damaged_ppl_ratio": round(damaged["domain_ppl"] / dense["domain_ppl"], 2),
                     "damaged_score": damaged[task][metric], "difference": round(paired.difference, 4),
                     "difference_low": round(paired.low, 4), "difference_high": round(paired.high, 4)}
            entry["above_trivial"] = base is None or entry["dense_low"] > base[1]
            entry["above_damaged"] = paired.low > 0
            entry["discriminates"] = entry["above_trivial"] and entry["above_damaged"]
            mag = (magnitude or {}).get(task)
            if mag is not None and metric in mag and magnitude["dense"][task]["per_item"] == dense[task]["per_item"]:
                versus = _paired(dense, {task: mag}, task, metric)
                entry.update(magnitude=mag[metric], magnitude_difference=round(versus.difference, 4),
                             magnitude_low=round(versus.low, 4), magnitude_high=round(versus.high, 4))
            entries.append(entry)
    return entries


def load(path: str = DEFAULT_PATH) -> dict[tuple[str, str, str], dict]:
    """`(domain, task, metric) -> entry` of the committed test; empty when the file does not exist."""
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        return {(e["domain"], e["task"], e["metric"]): e for e in json.load(f)["metrics"]}


def counts(table: dict, domain: str, task: str, metric: str) -> bool:
    """Whether a verdict counts this metric: it passed the test (a metric never tested is not counted)."""
    entry = table.get((domain, task, metric))
    return bool(entry and entry["discriminates"])


def evidence(entry: dict | None) -> str:
    """One line saying why a metric does not discriminate (or that it was never tested)."""
    if entry is None:
        return "not tested for discrimination"
    others = [] if entry["trivial"] is None else [f"{entry['trivial']} {entry['trivial_score']:.3f}"]
    others.append(f"{entry['damaged']} ({entry['damaged_ppl_ratio']:.1f}x dense's domain ppl) {entry['damaged_score']:.3f}")
    return f"dense {entry['dense']:.3f} [{entry['dense_low']:.3f}, {entry['dense_high']:.3f}] against " + " and ".join(others)


def footnote(table: dict, domain: str, metrics: list[tuple[str, str]], mark: str = "†") -> str:
    """The note under a table whose columns `metrics` include some that do not discriminate ('' when none)."""
    failing = [(t, m) for t, m in metrics if not counts(table, domain, t, m)]
    if not failing:
        return ""
    why = "; ".join(f"{t} {m}: {evidence(table.get((domain, t, m)))}" for t, m in failing)
    return (f"{mark} not discriminating at 135M on the full test sets (`benchmarks/results/discrimination.md`); no "
            f"verdict counts it: "
            f"{why}.\n")


def _cell(value, low=None, high=None, signed=False) -> str:
    if value is None:
        return "-"
    sign = "+" if signed else ""
    text = f"{value:{sign}.3f}"
    return text + (f" [{low:{sign}.3f}, {high:{sign}.3f}]" if low is not None else "")


def markdown(data: dict) -> str:
    head = ["domain", "task metric", "items", "dense [95%]", "trivial answer", "most damaged row (domain ppl / dense's)",
            "its score", "dense - it [paired 95%]", "magnitude 50%, same items: dense - it", "discriminates"]
    lines = [f"Command: `{data['command']}`", "", "From: " + "; ".join(data["from"]), "",
             "A task metric discriminates at this size when the dense model's 95% interval lies wholly above the trivial "
             "answer (accuracy: always the most frequent answer, at least chance; macro-F1: chance, 1 / labels; ROUGE: "
             "none) and the most damaged model of the file (highest domain perplexity) scores below dense beyond the "
             "paired 95% interval. The magnitude column is for information (`matching_tasks.json`, the same items).", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for e in data["metrics"]:
        verdict = "yes" if e["discriminates"] else "**no**: " + ", ".join(
            reason for reason, failed in (("not above the trivial answer", not e["above_trivial"]),
                                          ("not above the damaged model", not e["above_damaged"])) if failed)
        lines.append("| " + " | ".join([
            e["domain"], f"{e['task']} {e['metric']}", str(e["items"]), _cell(e["dense"], e["dense_low"], e["dense_high"]),
            "-" if e["trivial"] is None else f"{e['trivial']}: {e['trivial_score']:.3f}",
            f"{e['damaged']} ({e['damaged_ppl_ratio']:.1f}x)", f"{e['damaged_score']:.3f}",
            _cell(e["difference"], e["difference_low"], e["difference_high"], signed=True),
            _cell(e.get("magnitude_difference"), e.get("magnitude_low"), e.get("magnitude_high"), signed=True)
            + (f" (magnitude {e['magnitude']:.3f})" if "magnitude" in e else ""),
            verdict]) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", nargs="+", help="full-test-set compare.py JSON files")
    parser.add_argument("--magnitude", default=None, help="matching_tasks.py JSON with 'dense' and 'magnitude:0.5' (information only)")
    parser.add_argument("--out", default=DEFAULT_PATH)
    args = parser.parse_args()
    magnitude = None
    if args.magnitude:
        with open(args.magnitude) as f:
            results = json.load(f)["results"]
        magnitude = {"dense": results["dense"], **results.get("magnitude:0.5", {})}
    data = {"command": "python " + " ".join(sys.argv), "from": [], "metrics": []}
    for path in args.results:
        with open(path) as f:
            compare = json.load(f)
        data["from"].append(f"`{compare['command']}` ({compare['date']})")
        for domain in sorted({r["domain"] for r in compare["rows"]}):
            data["metrics"] += judge(compare["rows"], domain, magnitude)
    if args.magnitude:
        data["from"].append(f"`{args.magnitude}`")
    with open(args.out, "w") as f:
        json.dump(data, f, indent=1)
    text = markdown(data)
    with open(os.path.splitext(args.out)[0] + ".md", "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
