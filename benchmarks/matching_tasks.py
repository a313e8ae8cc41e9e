"""Do the matching tasks earn their place? Dense SmolLM2 and magnitude pruning at 50% on every test item.

    python benchmarks/matching_tasks.py --models dense --out benchmarks/results/matching_tasks.json
    python benchmarks/matching_tasks.py --models magnitude:0.5 --out benchmarks/results/matching_tasks.json

A task earns its place (issue 16) when the dense model's 95% interval excludes chance (0.25) and magnitude at 50%
(no data) lies below dense with non-overlapping intervals. Each invocation adds its `--models` to --out (one model
per run keeps a run short); the table gives accuracy with its 95% percentile bootstrap interval over items, the
paired difference from the first model run, and the CPU seconds of each task (one torch thread: the wall time on
an idle core).
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
sys.path.insert(0, HERE)

TASKS = ("pubmed_title", "billsum_title", "wiki_next", "billsum_next")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["dense", "magnitude:0.5"])
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)  # a later run may add tasks
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)

    from matching_design import model_variant

    from optimum_dpruner.evaluation import evaluate_task

    out = {"models": [], "results": {}, "commands": []}
    if os.path.exists(args.out):
        with open(args.out) as f:
            out = json.load(f)
    for model_name in args.models:
        model, tokenizer = model_variant(model_name)
        results = out["results"].setdefault(model_name, {})
        for task in args.tasks:
            start = time.process_time()
            result = evaluate_task(model, tokenizer, task, progress=False)
            results[task] = {"items": result.num_items, "cpu_seconds": round(time.process_time() - start, 1),
                             **{k: round(v, 4) for k, v in result.metrics.items()}, "per_item": result.per_item()}
            print(json.dumps({"model": model_name, "task": task, **{k: v for k, v in results[task].items() if k != "per_item"}}),
                  flush=True)
        out["models"] += [] if model_name in out["models"] else [model_name]  # the first model stays the reference
        out["commands"].append("python " + " ".join(sys.argv))
        out["date"] = time.strftime("%Y-%m-%d", time.gmtime())
        with open(args.out, "w") as f:
            json.dump(out, f, indent=1)
        with open(os.path.splitext(args.out)[0] + ".md", "w") as f:
            f.write(_table(out))
        del model


def _table(out: dict) -> str:
    from optimum_dpruner.evaluation import paired_bootstrap, task_statistics

    models = out["models"]
    reference = models[0]
    commands = "; ".join(f"`{c}`" for c in out["commands"])
    lines = [f"Commands: {commands}\n", f"Date: {out['date']}; SmolLM2-135M-Instruct, fp32, one torch thread; chance 0.25; "
             "brackets: 95% percentile bootstrap interval over items (paired for the difference).\n",
             f"| task | items | model | accuracy [95%] | {reference} - model [95%] | earns its place | CPU s |",
             "|---|---|---|---|---|---|---|"]
    for task in TASKS:
        first = out["results"][reference].get(task)
        for m in models:
            r = out["results"][m].get(task)
            if r is None:
                continue
            difference, verdict = "", ""
            if m != reference and first is not None:
                d = paired_bootstrap(task_statistics(task, first["per_item"])["accuracy"],
                                     task_statistics(task, r["per_item"])["accuracy"], r["items"])
                difference = f"{d.difference:+.3f} [{d.low:+.3f}, {d.high:+.3f}]"
                above_chance = first["accuracy_low"] > 0.25
                separated = r["accuracy_high"] < first["accuracy_low"]
                verdict = "yes" if above_chance and separated else f"no (above chance: {above_chance}, separated: {separated})"
            lines.append(f"| {task} | {r['items']} | {m} | {r['accuracy']:.3f} [{r['accuracy_low']:.3f}, {r['accuracy_high']:.3f}] | "
                         f"{difference} | {verdict} | {r['cpu_seconds']:.0f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
