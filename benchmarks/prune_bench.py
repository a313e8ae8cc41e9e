"""Quality, time and memory of pruning methods on SmolLM2-135M-Instruct.

Each run prunes a fresh copy of the model in its own subprocess (so peak memory is the run's own), then measures
perplexity on held-out general text (Wikipedia test articles) and domain text (PubMed test abstracts, or US
legislation for --domain legal), with non-overlapping 512-token windows.

Example (the baseline table of benchmarks/README.md):
    python benchmarks/prune_bench.py --methods magnitude wanda sparsegpt --patterns unstructured 2:4 \
        --calibration general --out benchmarks/results/baselines.json

A run is named METHOD/PATTERN/CALIBRATION; `dense` is the unpruned model. Results are appended to --out as
they finish (a JSON list), and a markdown table is written next to it (same name, .md).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time


def _single(args: argparse.Namespace) -> dict:
    import torch

    from optimum_dpruner import DPruner, DPrunerConfig, perplexity

    torch.set_num_threads(args.threads)
    method, pattern, calibration = args.single.split("/")
    overrides = json.loads(args.config_json) if args.config_json else {}
    row: dict = {"run": args.single, "method": method, "pattern": pattern, "calibration": calibration}
    if method == "dense":
        pruner = DPruner.from_pretrained(config=DPrunerConfig(method="magnitude"))
        row.update(prune_seconds=0.0, peak_rss_mib=None, sparsity=0.0)
    else:
        config = DPrunerConfig(method=method, pattern=pattern, seed=args.seed, **overrides)
        pruner = DPruner.from_pretrained(config=config)
        domain = f"builtin:{args.domain}"
        if method == "dpruner":
            # the first D-Pruner run saves G and I; the others re-extract their masks from them (no data pass)
            reuse = args.scores and os.path.exists(args.scores)
            result = pruner.prune("builtin:general", domain, importance=args.scores if reuse else None, progress=False)
            row["scores"] = "reused" if reuse else "computed"
            if args.scores and not reuse:
                result.save_importance(args.scores)
        else:
            result = pruner.prune(domain if calibration == "domain" else "builtin:general", progress=False)
        report = result.report
        row.update(
            prune_seconds=round(sum(report.stage_seconds.values()), 1),
            stage_seconds={k: round(v, 1) for k, v in report.stage_seconds.items()},
            peak_rss_mib=round(max(report.peak_rss_bytes.values()) / 2**20),
            sparsity=round(report.sparsity, 4),
            regulariser_ratio_mean=report.extra.get("regulariser_ratio_mean"),
            config=config.to_dict(),
        )
    for name, source in (("general_ppl", "builtin:general"), (f"{args.domain}_ppl", f"builtin:{args.domain}")):
        row[name] = round(perplexity(pruner.model, pruner.tokenizer, source, window=512, limit=args.eval_windows, progress=False), 3)
    row["eval_windows"] = args.eval_windows
    return row


def _table(rows: list[dict], domain: str) -> str:
    head = (f"| method | pattern | calibration | general ppl | {domain} ppl | sparsity | prune s | peak RSS MiB |\n"
            "|---|---|---|---|---|---|---|---|\n")
    lines = []
    for r in rows:
        lines.append(
            f"| {r['method']} | {r['pattern']} | {r['calibration']}{' (scores reused)' if r.get('scores') == 'reused' else ''} | "
            f"{r['general_ppl']:.2f} | {r[f'{domain}_ppl']:.2f} | {r['sparsity']:.3f} | {r['prune_seconds']:.0f} | "
            f"{r['peak_rss_mib'] if r['peak_rss_mib'] is not None else '-'} |"
        )
    return head + "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", nargs="+", default=["magnitude", "wanda", "sparsegpt"])
    parser.add_argument("--patterns", nargs="+", default=["unstructured", "2:4"])
    parser.add_argument("--calibration", nargs="+", default=["general"], choices=["general", "domain"],
                        help="calibration set of the baselines (D-Pruner always uses both)")
    parser.add_argument("--domain", default="medical", choices=["medical", "legal"])
    parser.add_argument("--dense", action="store_true", help="also evaluate the unpruned model")
    parser.add_argument("--eval-windows", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--config-json", default="", help="extra DPrunerConfig fields as JSON, for every run")
    parser.add_argument("--out", default="benchmarks/results/prune_bench.json")
    parser.add_argument("--scores", default="", help="D-Pruner scores file: saved by the first D-Pruner run, reused by the next")
    parser.add_argument("--single", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.single:
        print(json.dumps(_single(args)))
        return
    runs = ["dense/-/-"] if args.dense else []
    for method in args.methods:
        for pattern in args.patterns:
            if method == "dpruner":
                calibrations = ["general+domain"]
            elif method == "magnitude":
                calibrations = ["none"]  # uses no data
            else:
                calibrations = args.calibration
            runs += [f"{method}/{pattern}/{c}" for c in calibrations]
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    rows: list[dict] = []
    command = "python " + " ".join(sys.argv)
    for run in runs:
        start = time.time()
        child = [sys.executable, __file__, "--single", run, "--domain", args.domain, "--eval-windows", str(args.eval_windows),
                 "--seed", str(args.seed), "--threads", str(args.threads), "--config-json", args.config_json,
                 "--scores", args.scores]
        out = subprocess.run(child, check=True, capture_output=True, text=True).stdout
        row = json.loads(out.strip().splitlines()[-1])
        row["wall_seconds"] = round(time.time() - start, 1)
        rows.append(row)
        print(json.dumps({k: v for k, v in row.items() if k not in ("config", "stage_seconds")}), flush=True)
        with open(args.out, "w") as f:
            json.dump({"command": command, "date": time.strftime("%Y-%m-%d", time.gmtime()), "rows": rows}, f, indent=1)
        with open(os.path.splitext(args.out)[0] + ".md", "w") as f:
            f.write(f"Command: `{command}`\n\nDate: {time.strftime('%Y-%m-%d', time.gmtime())}, {os.cpu_count()} CPU threads, fp32.\n\n")
            f.write(_table(rows, args.domain))


if __name__ == "__main__":
    main()
