"""What one compare.py row costs to evaluate on the full test sets, measured single-threaded on subsets.

    python benchmarks/eval_cost.py --out benchmarks/results/eval_cost.json

Each invocation measures its `--parts` and adds them to --out. Each part of a row's evaluation (the perplexity sets, every task) runs on a seeded subset with one torch thread;
its CPU seconds (on one thread, the wall time on an idle core, whatever else shares the machine) are scaled
linearly to the full test set (perplexity: by windows; tasks: by items). The model is the dense SmolLM2: a pruned
model of the same shape costs the same. `--speedup` measures what a second thread gives: the wall time of 8
perplexity windows with one and with two torch threads, alternating 3 times (median of each); run it on an idle
machine, since the wall time counts whatever else runs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

#: part -> (kind, source or task, subset size)
PARTS = {
    "general_ppl": ("perplexity", "builtin:general", 16),
    "medical_ppl": ("perplexity", "builtin:medical", 16),
    "legal_ppl": ("perplexity", "builtin:legal", 16),
    "pubmedqa": ("task", "pubmedqa", 50),
    "casehold": ("task", "casehold", 40),
    "billsum": ("task", "billsum", 4),
    "pubmed_title": ("task", "pubmed_title", 40),
    "billsum_title": ("task", "billsum_title", 40),
    "wiki_next": ("task", "wiki_next", 40),
    "billsum_next": ("task", "billsum_next", 40),
}
ROW_PARTS = {"medical": ("general_ppl", "medical_ppl", "wiki_next", "pubmedqa", "pubmed_title"),
             "legal": ("general_ppl", "legal_ppl", "wiki_next", "casehold", "billsum", "billsum_next")}


def _full_size(kind: str, source: str, tokenizer) -> int:
    from optimum_dpruner.evaluation import load_task_records, tokenize_corpus
    from optimum_dpruner.evaluation.matching import ITEM_BUILDERS

    if kind == "perplexity":
        tokens = len(tokenize_corpus(source, tokenizer))
        return -(-(tokens - 512) // 512) + 1  # windows of 512 moved by 512
    records = load_task_records(source)
    return len(ITEM_BUILDERS[source](records)) if source in ITEM_BUILDERS else len(records)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", nargs="*", default=list(PARTS), choices=list(PARTS), help="parts to measure (default: all)")
    parser.add_argument("--billsum-limit", type=int, default=50, help="BillSum items of compare.py's default row")
    parser.add_argument("--speedup", action="store_true", help="measure the two-thread speed-up (wall time; idle machine)")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)

    from optimum_dpruner import DPruner, DPrunerConfig
    from optimum_dpruner.evaluation import evaluate_perplexity, evaluate_task

    pruner = DPruner.from_pretrained(config=DPrunerConfig(method="magnitude"))
    model, tokenizer = pruner.model, pruner.tokenizer
    out = json.load(open(args.out)) if os.path.exists(args.out) else {"parts": {}, "commands": []}
    parts = out["parts"]
    for name in args.parts:
        kind, source, subset = PARTS[name]
        full = _full_size(kind, source, tokenizer)
        wall, cpu = time.time(), time.process_time()
        if kind == "perplexity":
            result = evaluate_perplexity(model, tokenizer, source, limit=subset, progress=False)
            measured, value = result.windows, result.perplexity
        else:
            result = evaluate_task(model, tokenizer, source, limit=subset, seed=0, progress=False)
            measured, value = result.num_items, next(iter(result.metrics.values()))
        seconds = time.process_time() - cpu
        parts[name] = {"measured": measured, "full": full, "cpu_seconds": round(seconds, 1),
                       "wall_seconds": round(time.time() - wall, 1), "full_cpu_seconds": round(seconds * full / measured),
                       "value_on_subset": round(value, 4)}
        print(json.dumps({name: parts[name]}), flush=True)
    out["commands"].append("python " + " ".join(sys.argv))
    out["date"] = time.strftime("%Y-%m-%d", time.gmtime())
    if args.speedup:
        out["two_thread_speedup"] = _speedup(model, tokenizer)
        print(json.dumps({"two_thread_speedup": out["two_thread_speedup"]}), flush=True)
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(out, f, indent=1)
    with open(os.path.splitext(args.out)[0] + ".md", "w") as f:
        f.write(_table(out, args.billsum_limit))


def _speedup(model, tokenizer) -> float:
    """Median wall time of 8 windows on one thread over the median on two, alternating 3 times."""
    from optimum_dpruner.evaluation import evaluate_perplexity

    times: dict[int, list[float]] = {1: [], 2: []}
    for _ in range(3):
        for threads in (1, 2):
            torch.set_num_threads(threads)
            start = time.perf_counter()
            evaluate_perplexity(model, tokenizer, "builtin:general", limit=8, progress=False)
            times[threads].append(time.perf_counter() - start)
    torch.set_num_threads(1)
    median = {k: sorted(v)[1] for k, v in times.items()}
    return round(median[1] / median[2], 2)


def _table(out: dict, billsum_limit: int) -> str:
    parts, speedup = out["parts"], out.get("two_thread_speedup")
    commands = "; ".join(f"`{c}`" for c in out["commands"])
    threads = f"two-thread speed-up {speedup} (`--speedup`)" if speedup else "two threads not measured (`--speedup`, idle machine)"
    lines = [f"Commands: {commands}\n", f"Date: {out['date']}; dense SmolLM2-135M-Instruct, fp32, one torch thread; {threads}.\n",
             "| part | measured on | full set | CPU s measured | full set, 1 thread s | full set, 2 threads s |", "|---|---|---|---|---|---|"]
    for name, p in parts.items():
        two = f"{p['full_cpu_seconds'] / speedup:.0f}" if speedup else "-"
        lines.append(f"| {name} | {p['measured']} | {p['full']} | {p['cpu_seconds']} | {p['full_cpu_seconds']} | {two} |")
    for domain, names in ROW_PARTS.items():
        if all(n in parts for n in names):
            total = sum(parts[n]["full_cpu_seconds"] for n in names)
            default = total - parts["billsum"]["full_cpu_seconds"] * (1 - billsum_limit / parts["billsum"]["full"]) if "billsum" in names else total
            two = f"{total / speedup:.0f}" if speedup else "-"
            lines.append(f"| **{domain} row, full sets** | | | | {total:.0f} | {two} |")
            if default != total:
                two = f"{default / speedup:.0f}" if speedup else "-"
                lines.append(f"| **{domain} row, BillSum on {billsum_limit}** | | | | {default:.0f} | {two} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
