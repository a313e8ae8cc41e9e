"""Compare pruning methods on SmolLM2-135M-Instruct: quality, pruning time and peak memory, per domain.

One command gives the table of benchmarks/README.md:

    python benchmarks/compare.py --domains medical --out benchmarks/results/compare_medical.json
    python benchmarks/compare.py --domains legal --out benchmarks/results/compare_legal.json

(`--resume` continues an interrupted command: the rows already in --out are kept.)

For each domain: the dense model; magnitude (no data); Wanda and SparseGPT each calibrated once on general text
(Wikipedia train articles) and once on domain text (PubMed train abstracts; CaseHOLD train cases); D-Pruner (both);
at 50% unstructured and 2:4. Each run prunes a fresh model in its own subprocess (so its peak memory is its own),
then measures general perplexity (Wikipedia test articles), domain perplexity (PubMed test abstracts; US
legislation) and the domain's tasks (PubMedQA; CaseHOLD and BillSum) on a seeded subset of `--task-limit` items.

Before any run, every evaluation text (perplexity documents and task items) is checked against every text the
calibration sets draw from (13-word spans, `optimum_dpruner.overlap`): the run stops if an evaluation document
is a near-duplicate of calibration text; the counts are written into the results.

The peer rows (`llmcompressor-sparsegpt`, `llmcompressor-wanda`) run llm-compressor 0.14's `oneshot` in its own
virtual environment (`--peer-python`, made by `make peer-venv`) through `benchmarks/peer.py`, on the very token
windows our methods calibrate on (library defaults: 32 x 512, seed 0), and are evaluated here like every row.
Their "prune s" is `oneshot` alone (ours also counts cutting the calibration text into windows).

The D-Pruner 2:4 run reuses the scores (G and I) of the unstructured run (`--scores-dir`): its "prune s" adds the
time that computing them took, so it is the time to produce that model from nothing; `own_seconds` is the
masking alone. Results are appended to --out (JSON) as they finish, and a markdown table is written next to it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

PEER_PREFIX = "llmcompressor-"
DOMAIN_TASKS = {"medical": ("pubmedqa",), "legal": ("casehold", "billsum")}
TASK_METRICS = {"pubmedqa": ("accuracy", "macro_f1"), "casehold": ("macro_f1",), "billsum": ("rouge1", "rouge2", "rougeL")}


def _task_texts(task: str) -> list[str]:
    from optimum_dpruner.evaluation import load_task_records

    fields = {"pubmedqa": lambda r: " ".join(r["contexts"]) + " " + r["question"], "casehold": lambda r: r["citing_prompt"],
              "billsum": lambda r: r["source"]}[task]
    return [fields(r) for r in load_task_records(task)]


def check_overlap(domain: str) -> dict:
    """Overlap of every evaluation text of `domain`'s table with the texts its calibration sets draw from."""
    from optimum_dpruner.data import iter_texts, load_texts
    from optimum_dpruner.overlap import ngram_overlap

    calibration = [t for name in ("general", domain) for t in iter_texts(load_texts(f"builtin:{name}", split="train"))]
    evaluations = {f"builtin:{name} (test)": list(iter_texts(load_texts(f"builtin:{name}", split="test"))) for name in ("general", domain)}
    evaluations.update({task: _task_texts(task) for task in DOMAIN_TASKS[domain]})
    out = {}
    for name, texts in evaluations.items():
        report = ngram_overlap(calibration, texts)
        out[name] = {"documents": report.documents, "sharing_a_13_word_span": report.documents_sharing_a_span,
                     "max_fraction": round(report.max_fraction, 4), "near_duplicates": len(report.near_duplicates)}
        if not report.clean:
            raise SystemExit(f"{name}: {len(report.near_duplicates)} evaluation documents are near-duplicates of calibration "
                             f"text (>= {report.threshold:.0%} of their 13-word spans); fix the data split first.")
    return out


def _run_peer(args: argparse.Namespace, pruner, method: str, pattern: str, calibration: str) -> dict:
    """Prune with llm-compressor in its own environment on our calibration windows; load the result into `pruner.model`."""
    from peer import prune_in_peer_venv

    from optimum_dpruner import DPrunerConfig
    from optimum_dpruner.data import calibration_samples

    defaults = DPrunerConfig(**(json.loads(args.config_json) if args.config_json else {}))
    windows = calibration_samples(f"builtin:{calibration}", pruner.tokenizer, defaults.num_samples, defaults.seq_len, args.seed)
    peer = prune_in_peer_venv(pruner.model, windows, method, pattern, args.peer_python, args.threads)
    return {"prune_seconds": peer["prune_seconds"], "own_seconds": peer["prune_seconds"], "peak_rss_mib": peer["peak_rss_mib"],
            "sparsity": peer["sparsity"], "llmcompressor": peer["llmcompressor"], "calibration_windows": len(windows)}


def _single(args: argparse.Namespace) -> dict:
    import torch

    from optimum_dpruner import DPruner, DPrunerConfig, evaluate_task, perplexity

    torch.set_num_threads(args.threads)
    domain, method, pattern, calibration = args.single.split("/")
    overrides = json.loads(args.config_json) if args.config_json else {}
    row: dict = {"run": args.single, "domain": domain, "method": method, "pattern": pattern, "calibration": calibration}
    if method == "dense":
        pruner = DPruner.from_pretrained(config=DPrunerConfig(method="magnitude"))
        row.update(prune_seconds=0.0, own_seconds=0.0, peak_rss_mib=None, sparsity=0.0)
    elif method.startswith(PEER_PREFIX):
        pruner = DPruner.from_pretrained(config=DPrunerConfig(method="magnitude"))
        row.update(_run_peer(args, pruner, method[len(PEER_PREFIX):], pattern, domain if calibration == "domain" else "general"))
    else:
        config = DPrunerConfig(method=method, pattern=pattern, seed=args.seed, **overrides)
        pruner = DPruner.from_pretrained(config=config)
        if method == "dpruner":
            scores = os.path.join(args.scores_dir, f"{domain}.safetensors") if args.scores_dir else ""
            reuse = bool(scores) and os.path.exists(scores)
            data = () if reuse else ("builtin:general", f"builtin:{domain}")  # saved scores need (and take) no data
            result = pruner.prune(*data, importance=scores if reuse else None, progress=False)
            row["scores"] = "reused" if reuse else "computed"
            if scores and not reuse:
                result.save_importance(scores)
        else:
            result = pruner.prune(f"builtin:{domain}" if calibration == "domain" else "builtin:general", progress=False)
        report = result.report
        own = round(sum(report.stage_seconds.values()), 1)
        row.update(
            prune_seconds=own,
            own_seconds=own,
            stage_seconds={k: round(v, 1) for k, v in report.stage_seconds.items()},
            peak_rss_mib=round(max(report.peak_rss_bytes.values()) / 2**20),
            sparsity=round(report.sparsity, 4),
            regulariser_ratio_mean=report.extra.get("regulariser_ratio_mean"),
            config=config.to_dict(),
        )
    model, tokenizer = pruner.model, pruner.tokenizer
    perplexity_sets = {"general_ppl": "builtin:general", "domain_ppl": f"builtin:{domain}"}
    for name, source in perplexity_sets.items():
        row[name] = round(perplexity(model, tokenizer, source, window=512, limit=args.eval_windows, progress=False), 3)
    for task in DOMAIN_TASKS[domain]:
        limit = args.billsum_limit if task == "billsum" else args.task_limit
        start = time.time()
        result = evaluate_task(model, tokenizer, task, limit=limit, seed=args.seed, progress=False)
        row[task] = {"items": result.num_items, "seconds": round(time.time() - start, 1),
                     **{k: round(v, 4) for k, v in result.metrics.items()}}
    row["eval_windows"] = args.eval_windows
    return row


def _table(rows: list[dict], domain: str) -> str:
    tasks = DOMAIN_TASKS[domain]
    metric_heads = [f"{task} {metric}" for task in tasks for metric in TASK_METRICS[task]]
    domain_ppl = {"medical": "PubMed", "legal": "US legislation"}[domain]
    head = ["method", "pattern", "calibration", "Wikipedia ppl", f"{domain_ppl} ppl", *metric_heads, "prune s", "peak RSS MiB"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        if r["domain"] != domain:
            continue
        cells = [r["method"], r["pattern"], r["calibration"] + (" (scores reused)" if r.get("scores") == "reused" else ""),
                 f"{r['general_ppl']:.2f}", f"{r['domain_ppl']:.2f}"]
        cells += [f"{r[task][metric]:.3f}" for task in tasks for metric in TASK_METRICS[task]]
        cells += [f"{r['prune_seconds']:.0f}", str(r["peak_rss_mib"]) if r["peak_rss_mib"] is not None else "-"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _runs(args: argparse.Namespace, domain: str) -> list[str]:
    runs = [f"{domain}/dense/-/-"]
    for method in args.methods:
        for pattern in args.patterns:
            calibrations = {"dpruner": ["general+domain"], "magnitude": ["none"]}.get(method, ["general", "domain"])
            if method.startswith(PEER_PREFIX):
                calibrations = args.peer_calibration
            runs += [f"{domain}/{method}/{pattern}/{c}" for c in calibrations]
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--domains", nargs="+", default=["medical", "legal"], choices=sorted(DOMAIN_TASKS))
    parser.add_argument("--methods", nargs="+", default=["dpruner", "magnitude", "wanda", "sparsegpt", "llmcompressor-sparsegpt", "llmcompressor-wanda"],
                        help="methods; llmcompressor-<name> runs the peer (needs --peer-python)")
    parser.add_argument("--peer-python", default=os.path.join(".peer-venv", "bin", "python"),
                        help="python of llm-compressor's virtual environment (make peer-venv)")
    parser.add_argument("--peer-calibration", nargs="+", default=["general"], choices=["general", "domain"],
                        help="calibration sets of the peer runs (default: general)")
    parser.add_argument("--resume", action="store_true", help="keep the rows already in --out and run only the missing ones")
    parser.add_argument("--patterns", nargs="+", default=["unstructured", "2:4"])
    parser.add_argument("--eval-windows", type=int, default=8, help="512-token perplexity windows per set (default 8)")
    parser.add_argument("--task-limit", type=int, default=50, help="PubMedQA / CaseHOLD items (seeded subset, default 50)")
    parser.add_argument("--billsum-limit", type=int, default=5, help="BillSum items (greedy generation, default 5)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--config-json", default="", help="extra DPrunerConfig fields as JSON, for every run")
    parser.add_argument("--scores-dir", default=os.path.join("outputs", "compare-scores"),
                        help="where the D-Pruner unstructured run saves G and I for the 2:4 run ('' to recompute)")
    parser.add_argument("--out", default="benchmarks/results/compare.json")
    parser.add_argument("--single", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.single:
        print(json.dumps(_single(args)))
        return
    command = "python " + " ".join(a for a in sys.argv if a != "--resume")
    if any(m.startswith(PEER_PREFIX) for m in args.methods) and not os.path.exists(args.peer_python):
        raise SystemExit(f"--peer-python {args.peer_python} does not exist; run `make peer-venv` or drop the llmcompressor-* methods.")
    rows: list[dict] = []
    if args.resume and os.path.exists(args.out):
        with open(args.out) as f:
            previous = json.load(f)
        if previous["command"] != command:
            raise SystemExit(f"--resume: {args.out} was written by another command ({previous['command']}); drop --resume.")
        rows = previous["rows"]
    done = {r["run"] for r in rows}
    scores_seconds = {r["domain"]: r["own_seconds"] for r in rows if r.get("scores") == "computed"}
    if args.scores_dir:
        os.makedirs(args.scores_dir, exist_ok=True)
        for domain in args.domains:  # scores of an earlier invocation (other defaults, perhaps) are never reused
            stale = os.path.join(args.scores_dir, f"{domain}.safetensors")
            if os.path.exists(stale) and f"{domain}/dpruner/unstructured/general+domain" not in done:
                os.remove(stale)
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    overlap = {domain: check_overlap(domain) for domain in args.domains}
    print(json.dumps({"overlap": overlap}), flush=True)
    order = {run: i for i, run in enumerate(run for domain in args.domains for run in _runs(args, domain))}
    for domain in args.domains:
        for run in _runs(args, domain):
            if run in done:
                continue
            start = time.time()
            child = [sys.executable, __file__, "--single", run, "--eval-windows", str(args.eval_windows),
                     "--task-limit", str(args.task_limit), "--billsum-limit", str(args.billsum_limit), "--seed", str(args.seed),
                     "--threads", str(args.threads), "--config-json", args.config_json, "--scores-dir", args.scores_dir,
                     "--peer-python", args.peer_python]
            proc = subprocess.run(child, capture_output=True, text=True)
            if proc.returncode != 0:
                raise SystemExit(f"run {run} failed:\n{proc.stderr[-4000:]}")
            row = json.loads(proc.stdout.strip().splitlines()[-1])
            if row.get("scores") == "computed":
                scores_seconds[domain] = row["own_seconds"]
            elif row.get("scores") == "reused":
                row["prune_seconds"] = round(row["own_seconds"] + scores_seconds.get(domain, 0.0), 1)
            row["wall_seconds"] = round(time.time() - start, 1)
            rows.append(row)
            rows.sort(key=lambda r: order.get(r["run"], len(order)))  # rows added by --resume keep the table's order
            print(json.dumps({k: v for k, v in row.items() if k not in ("config", "stage_seconds")}), flush=True)
            date = time.strftime("%Y-%m-%d", time.gmtime())
            with open(args.out, "w") as f:
                json.dump({"command": command, "date": date, "overlap": overlap, "rows": rows}, f, indent=1)
            with open(os.path.splitext(args.out)[0] + ".md", "w") as f:
                f.write(f"Command: `{command}`\n\nDate: {date}, {os.cpu_count()} CPU threads, fp32, SmolLM2-135M-Instruct, 50% "
                        f"sparsity; perplexity on {args.eval_windows} x 512-token windows; PubMedQA/CaseHOLD on "
                        f"{args.task_limit} items, BillSum on {args.billsum_limit} (seed {args.seed}).\n")
                for name in args.domains:
                    if any(r["domain"] == name for r in rows):
                        f.write(f"\n### {name}\n\n" + _table(rows, name))


if __name__ == "__main__":
    main()
