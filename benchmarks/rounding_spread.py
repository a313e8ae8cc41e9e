"""How far rounding alone moves a pruned model, for our SparseGPT and llm-compressor's, on the same windows.

The 32 calibration windows are visited in K orders (order 0 is the library's; order k > 0 a seeded permutation).
In exact arithmetic every order gives the same Hessians and so the same model; in fp32 the sums round
differently, and N:M choices between near-equal weights amplify the difference block after block. Each order is
pruned by our SparseGPT (`prune_blockwise`, in this process) and by llm-compressor 0.14 (`benchmarks/peer.py` in
its own venv, `make peer-venv`), and every model is evaluated with the perplexity protocol of `compare.py`
(8 x 512-token test windows of each set). The two implementations are compared on their means over the orders.

    python benchmarks/rounding_spread.py --out benchmarks/results/rounding_spread.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

SETS = {"wikipedia": "builtin:general", "pubmed": "builtin:medical", "legislation": "builtin:legal"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--pattern", default="2:4")
    parser.add_argument("--peer-python", default=os.path.join(".peer-venv", "bin", "python"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--eval-windows", type=int, default=8)
    parser.add_argument("--out", default="benchmarks/results/rounding_spread.json")
    args = parser.parse_args()

    import torch
    from safetensors.torch import load_file, save_file

    from optimum_dpruner import DPruner, DPrunerConfig, perplexity
    from optimum_dpruner.assets import ensure_default_model
    from optimum_dpruner.data import calibration_samples
    from optimum_dpruner.methods import SparseGPTMethod
    from optimum_dpruner.pipeline import prune_blockwise

    torch.set_num_threads(args.threads)
    config = DPrunerConfig(method="sparsegpt", pattern=args.pattern)
    pruner = DPruner.from_pretrained(config=config)
    model, tokenizer = pruner.model, pruner.tokenizer
    dense = {k: v.detach().clone() for k, v in model.state_dict().items()}
    windows = calibration_samples("builtin:general", tokenizer, config.num_samples, config.seq_len, config.seed)

    def evaluate() -> dict[str, float]:
        return {name: round(perplexity(model, tokenizer, source, window=512, limit=args.eval_windows, progress=False), 3)
                for name, source in SETS.items()}

    rows = []
    for order in args.orders:
        permutation = torch.randperm(len(windows), generator=torch.Generator().manual_seed(order)).tolist() if order else list(range(len(windows)))
        ordered = [windows[i] for i in permutation]
        model.load_state_dict(dense)
        start = time.time()
        prune_blockwise(model, ordered, SparseGPTMethod, config, progress=False)
        rows.append({"implementation": "optimum-dpruner", "order": order, "prune_seconds": round(time.time() - start, 1), **evaluate()})
        print(json.dumps(rows[-1]), flush=True)
        model.load_state_dict(dense)
        with tempfile.TemporaryDirectory() as tmp:
            calib, out = os.path.join(tmp, "calibration.safetensors"), os.path.join(tmp, "pruned.safetensors")
            save_file({"input_ids": torch.cat(ordered)}, calib)
            command = [args.peer_python, os.path.join(os.path.dirname(os.path.abspath(__file__)), "peer.py"), "--model",
                       ensure_default_model(), "--calibration", calib, "--method", "sparsegpt", "--pattern", args.pattern,
                       "--threads", str(args.threads), "--out", out]
            proc = subprocess.run(command, capture_output=True, text=True)
            if proc.returncode != 0:
                raise RuntimeError(f"llm-compressor run failed:\n{proc.stderr[-4000:]}")
            peer = json.loads(proc.stdout.strip().splitlines()[-1])
            with torch.no_grad():
                parameters = dict(model.named_parameters())
                for name, tensor in load_file(out).items():
                    parameters[name].copy_(tensor)
        rows.append({"implementation": "llm-compressor", "order": order, "prune_seconds": peer["prune_seconds"], **evaluate()})
        print(json.dumps(rows[-1]), flush=True)

    summary = {}
    for impl in ("optimum-dpruner", "llm-compressor"):
        mine = [r for r in rows if r["implementation"] == impl]
        summary[impl] = {name: {"mean": round(sum(r[name] for r in mine) / len(mine), 3), "min": min(r[name] for r in mine),
                                "max": max(r[name] for r in mine)} for name in (*SETS, "prune_seconds")}
    ours, peer = summary["optimum-dpruner"], summary["llm-compressor"]
    summary["ours_over_peer_mean"] = {name: round(ours[name]["mean"] / peer[name]["mean"] - 1, 4) for name in (*SETS, "prune_seconds")}
    result = {"command": "python benchmarks/rounding_spread.py " + " ".join(sys.argv[1:]), "date": time.strftime("%Y-%m-%d"),
              "pattern": args.pattern, "calibration": f"builtin:general, {config.num_samples} x {config.seq_len}",
              "eval_windows": args.eval_windows, "rows": rows, "summary": summary}
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
