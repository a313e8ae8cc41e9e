"""How far rounding alone moves a pruned model, for our SparseGPT and llm-compressor's, on the same windows.

The 32 calibration windows are visited in K orders (order 0 is the library's; order k > 0 a seeded permutation).
In exact arithmetic every order gives the same Hessians and so the same model; in fp32 the sums round
differently, and N:M choices between near-equal weights amplify the difference block after block. Each order is
pruned by our SparseGPT (`prune_blockwise`, in this process) and by llm-compressor 0.14 (`benchmarks/peer.py` in
its own venv, `make peer-venv`), and every model is evaluated with the perplexity protocol of `compare.py`
(8 x 512-token test windows of each set). The two implementations are compared on their means over the orders.

    python benchmarks/rounding_spread.py --out benchmarks/results/rounding_spread.json
    python benchmarks/rounding_spread.py --pattern unstructured --num-samples 16 --seq-len 256 --orders 0 1 --out ...

(the pairs' times are in the result too; `speed_vs_peer.py` is the time comparison, with the bound).

writes the JSON result and a markdown table next to it (`--markdown-only` re-writes the table from the JSON).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from common import PEER_SETS as SETS, add_output_arguments, rewrite_markdown, test_perplexities


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--pattern", default="2:4")
    parser.add_argument("--peer-python", default=os.path.join(".peer-venv", "bin", "python"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--eval-windows", type=int, default=8)
    parser.add_argument("--num-samples", type=int, default=32, help="calibration windows (library default 32)")
    parser.add_argument("--seq-len", type=int, default=512, help="tokens per calibration window (library default 512)")
    add_output_arguments(parser, "benchmarks/results/rounding_spread.json")
    args = parser.parse_args()
    if rewrite_markdown(args, write_markdown):
        return

    import torch
    from peer import prune_in_peer_venv

    from optimum_dpruner import DPruner, DPrunerConfig
    from optimum_dpruner.data.calibration import calibration_samples
    from optimum_dpruner.methods import SparseGPTMethod
    from optimum_dpruner.stages import prune_blockwise

    torch.set_num_threads(args.threads)
    config = DPrunerConfig(method="sparsegpt", pattern=args.pattern, num_samples=args.num_samples, seq_len=args.seq_len)
    pruner = DPruner.from_pretrained(config=config)
    model, tokenizer = pruner.model, pruner.tokenizer
    dense = {k: v.detach().clone() for k, v in model.state_dict().items()}
    windows = calibration_samples("builtin:general", tokenizer, config.num_samples, config.seq_len, config.seed)

    def evaluate() -> dict[str, float]:
        return test_perplexities(model, tokenizer, SETS, args.eval_windows)

    rows = []
    for order in args.orders:
        permutation = torch.randperm(len(windows), generator=torch.Generator().manual_seed(order)).tolist() if order else list(range(len(windows)))
        ordered = [windows[i] for i in permutation]
        model.load_state_dict(dense)
        start = time.time()
        prune_blockwise(model, ordered, SparseGPTMethod(config), config, progress=False)
        rows.append({"implementation": "optimum-dpruner", "order": order, "prune_seconds": round(time.time() - start, 1), **evaluate()})
        print(json.dumps(rows[-1]), flush=True)
        model.load_state_dict(dense)
        peer = prune_in_peer_venv(model, ordered, "sparsegpt", args.pattern, args.peer_python, args.threads)
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
    write_markdown(result, args.out)
    print(json.dumps(summary))


def write_markdown(result: dict, out: str) -> None:
    """The table of `result` next to the JSON file `out` (same name, `.md`)."""
    head = ["implementation", "order", "Wikipedia ppl", "PubMed ppl", "US legislation ppl", "prune s"]
    lines = [f"Command: `{result['command']}`", "",
             f"Date: {result['date']}, SparseGPT {result['pattern']} at 50%, calibration {result['calibration']}; "
             f"perplexity on {result['eval_windows']} x 512-token test windows of each set.", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in result["rows"]:
        lines.append(f"| {r['implementation']} | {r['order']} | {r['wikipedia']:.2f} | {r['pubmed']:.2f} | "
                     f"{r['legislation']:.2f} | {r['prune_seconds']:.0f} |")
    for impl in ("optimum-dpruner", "llm-compressor"):
        s = result["summary"][impl]
        lines.append(f"| {impl} | mean (min-max) | " + " | ".join(
            f"{s[name]['mean']:.2f} ({s[name]['min']:.2f}-{s[name]['max']:.2f})" for name in SETS)
            + f" | {s['prune_seconds']['mean']:.0f} |")
    ratio = result["summary"]["ours_over_peer_mean"]
    lines.append("| ours / peer - 1 | means | " + " | ".join(f"{ratio[name]:+.1%}" for name in (*SETS, "prune_seconds")) + " |")
    with open(os.path.splitext(out)[0] + ".md", "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
