"""Peak memory and time of each pruning stage against model size, and `DPruner.estimate()` against them.

Models: three randomly initialised LLaMA sizes (SmolLM2's tokenizer and vocabulary, seeded) and the real
SmolLM2-135M-Instruct, fp32 on CPU. Each model runs in a fresh process (so that one run's memory does not
linger into the next): `estimate()` is taken first, then `prune(...)` (D-Pruner on general + medical text, the
other methods on general text, each method with its default config), whose report gives each stage's wall time
and peak RSS (sampled every 20 ms). The estimate holds when every stage's peak is within 25% of the measured one.

    python benchmarks/memory_scaling.py --out benchmarks/results/memory_scaling.json
    python benchmarks/memory_scaling.py --methods dpruner sparsegpt wanda --out ...
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

MIB = 2**20

SIZES = {  # name: (hidden, layers, intermediate, heads, kv heads)
    "llama-h512-l8": (512, 8, 1408, 8, 4),
    "llama-h768-l12": (768, 12, 2048, 12, 4),
    "llama-h1024-l16": (1024, 16, 2816, 16, 4),
}


def run_one(name: str, method: str, args: argparse.Namespace) -> dict:
    """In this process: build or load the model, estimate, prune with `method`, and return the row."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig

    from optimum_dpruner import DPruner, DPrunerConfig
    from optimum_dpruner.models.default_model import ensure_default_model

    torch.set_num_threads(args.threads)
    path = ensure_default_model()
    tokenizer = AutoTokenizer.from_pretrained(path)
    if name == "smollm2-135m":
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    else:
        hidden, layers, inter, heads, kv = SIZES[name]
        torch.manual_seed(0)
        config = LlamaConfig(hidden_size=hidden, num_hidden_layers=layers, intermediate_size=inter,
                             num_attention_heads=heads, num_key_value_heads=kv, vocab_size=len(tokenizer),
                             max_position_embeddings=2048, tie_word_embeddings=True)
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32).eval()
    config = DPrunerConfig(method=method, num_samples=args.samples, domain_num_samples=args.samples, seq_len=args.seq_len)
    pruner = DPruner(model, tokenizer, config)
    estimate = pruner.estimate()
    start = time.time()
    data = ("builtin:general", "builtin:medical") if method == "dpruner" else ("builtin:general",)
    report = pruner.prune(*data, progress=False).report
    stages = {}
    for stage, est in estimate.to_dict()["stages"].items():
        measured = report.peak_rss_bytes.get(stage, 0) / MIB
        stages[stage] = {
            "measured_peak_mib": round(measured, 1),
            "estimated_peak_mib": est["peak_mib"],
            "estimate_over_measured": round(est["peak_mib"] / measured, 3) if measured else None,
            "measured_seconds": round(report.stage_seconds.get(stage, 0.0), 1),
            "estimated_seconds": est["seconds"],
            "estimated_parts_mib": est["parts_mib"],
        }
    return {
        "model": name,
        "method": method,
        "parameters": model.num_parameters(),
        "weights_mib": estimate.assumptions["weight_mib"],
        "runtime_mib": estimate.assumptions["runtime_mib"],
        "matmul_gflops_probe": estimate.assumptions["matmul_gflops"],
        "wall_seconds": round(time.time() - start, 1),
        "stages": stages,
        "within_25pct": all(
            s["estimate_over_measured"] is not None and abs(s["estimate_over_measured"] - 1) <= 0.25
            for s in stages.values()
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=[*SIZES, "smollm2-135m"])
    parser.add_argument("--methods", nargs="+", default=["dpruner"], help="methods, each with its default config")
    parser.add_argument("--samples", type=int, default=8, help="general and domain calibration sequences")
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/results/memory_scaling.json")
    parser.add_argument("--single", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.single:
        name, method = args.single.split(":")
        print(json.dumps(run_one(name, method, args)))
        return
    command = "python " + " ".join(sys.argv)
    rows = []
    for name, method in [(n, m) for m in args.methods for n in args.models]:
        cmd = [sys.executable, __file__, "--single", f"{name}:{method}", "--samples", str(args.samples), "--seq-len",
               str(args.seq_len), "--threads", str(args.threads)]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise SystemExit(f"{name} ({method}) failed:\n{done.stderr[-3000:]}")
        row = json.loads(done.stdout.strip().splitlines()[-1])
        print(json.dumps(row), flush=True)
        rows.append(row)
    result = {
        "command": command,
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{os.cpu_count()} CPU cores, fp32, no GPU",
        "samples": args.samples,
        "seq_len": args.seq_len,
        "rows": rows,
        "all_within_25pct": all(r["within_25pct"] for r in rows),
    }
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
