"""Pruning time of our SparseGPT and Wanda against llm-compressor 0.14's, paired on the same windows (issue 15).

For each calibration size (N windows x L tokens of the bundled general text, the library's sampler and seed) and
each pattern, the script prunes SmolLM2-135M-Instruct with our method (`prune_blockwise` in this process, windows
already tokenised) and with llm-compressor's (`benchmarks/peer.py` in its venv, `make peer-venv`; its time is
`oneshot` alone), alternating ours and the peer's on the same windows, and evaluates both models with the same
perplexity protocol (the first `--eval-windows` x 512-token test windows of Wikipedia and PubMed). In the same
process it measures the data-pass bound: one forward of the decoder stack over the calibration windows, one window
per call as the pipeline runs them, after one untimed warm-up window, before and again after the size's pairs; a
block-wise method runs every block twice, so its bound is twice the mean of the two.

    make peer-venv
    python benchmarks/speed_vs_peer.py --out benchmarks/results/speed_vs_peer.json

Run it on an idle machine (two torch processes on two cores slow each other by up to 8x). `--markdown-only`
re-writes the table from an existing `--out`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

from common import PEER_SETS, add_output_arguments, command_line, rewrite_markdown, test_perplexities

SETS = {name: PEER_SETS[name] for name in ("wikipedia", "pubmed")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=["32x512", "16x256"], help="calibration N x L")
    parser.add_argument("--patterns", nargs="+", default=["unstructured", "2:4"])
    parser.add_argument("--methods", nargs="+", default=["sparsegpt", "wanda"], choices=["sparsegpt", "wanda"])
    parser.add_argument("--peer-python", default=os.path.join(".peer-venv", "bin", "python"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--eval-windows", type=int, default=8)
    add_output_arguments(parser, "benchmarks/results/speed_vs_peer.json")
    args = parser.parse_args()
    if rewrite_markdown(args, write_markdown):
        return

    import torch
    from peer import prune_in_peer_venv

    from optimum_dpruner import DPruner, DPrunerConfig
    from optimum_dpruner.stages import prune_blockwise
    from optimum_dpruner.data.calibration import calibration_samples
    from optimum_dpruner.methods import get_method

    torch.set_num_threads(args.threads)
    pruner = DPruner.from_pretrained(config=DPrunerConfig(method="sparsegpt"))
    model, tokenizer = pruner.model, pruner.tokenizer
    dense = {k: v.detach().clone() for k, v in model.state_dict().items()}
    record = {"command": command_line(__file__, sys.argv[1:]), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
              "machine": f"{os.cpu_count()} CPU threads ({platform.machine()}), torch {torch.__version__}, "
                         f"{args.threads} torch threads", "eval_windows": args.eval_windows, "rows": []}

    def evaluate() -> dict[str, float]:
        return test_perplexities(model, tokenizer, SETS, args.eval_windows)

    for size in args.sizes:
        num_samples, seq_len = (int(v) for v in size.split("x"))
        windows = calibration_samples("builtin:general", tokenizer, num_samples, seq_len, 0)

        @torch.no_grad()
        def forward_seconds() -> float:
            model.load_state_dict(dense)
            model.model(input_ids=windows[0], use_cache=False)  # warm-up, not timed
            start = time.perf_counter()
            for ids in windows:
                model.model(input_ids=ids, use_cache=False)
            return time.perf_counter() - start

        forward = forward_seconds()
        size_rows = []
        for method in args.methods:
            for pattern in args.patterns:
                config = DPrunerConfig(method=method, pattern=pattern, num_samples=num_samples, seq_len=seq_len)
                model.load_state_dict(dense)
                start = time.perf_counter()
                prune_blockwise(model, windows, get_method(method)(config), config, progress=False)
                ours = time.perf_counter() - start
                row = {"size": size, "method": method, "pattern": pattern, "forward_seconds": round(forward, 1),
                       "bound_seconds": round(2 * forward, 1), "ours_seconds": round(ours, 1), "ours": evaluate()}
                print(json.dumps(row), flush=True)
                model.load_state_dict(dense)
                peer = prune_in_peer_venv(model, windows, method, pattern, args.peer_python, args.threads)
                row.update(peer_seconds=peer["prune_seconds"], peer_peak_rss_mib=peer["peak_rss_mib"],
                           llmcompressor=peer["llmcompressor"], peer=evaluate())
                row["peer_over_ours"] = round(row["peer_seconds"] / row["ours_seconds"], 2)
                row["ours_over_bound"] = round(row["ours_seconds"] / row["bound_seconds"], 2)
                record["rows"].append(row)
                size_rows.append(row)
                print(json.dumps(row), flush=True)
                with open(args.out, "w") as f:
                    json.dump(record, f, indent=1)
        after = forward_seconds()  # the bound again after the pairs: its drift over the size's runs
        for row in size_rows:
            row["forward_seconds_before_after"] = [round(forward, 1), round(after, 1)]
            row["bound_seconds"] = round(forward + after, 1)  # 2 x the mean of the two measurements
            row["ours_over_bound"] = round(row["ours_seconds"] / row["bound_seconds"], 2)
            row["peer_over_bound"] = round(row["peer_seconds"] / row["bound_seconds"], 2)
        with open(args.out, "w") as f:
            json.dump(record, f, indent=1)
    model.load_state_dict(dense)
    write_markdown(record, args.out)


def write_markdown(record: dict, out: str) -> None:
    """The table of `record` next to the JSON file `out` (same name, `.md`)."""
    lines = [
        f"Command: `{record['command']}`", "",
        f"Date: {record['date']}; {record['machine']}. 50% sparsity; calibration: N x L windows of the bundled general "
        f"text (the same windows for both sides); perplexity on {record['eval_windows']} x 512-token test windows. "
        "Bound: two forwards of the decoder stack over the windows (forward measured before and after the size's "
        "pairs in the same process, both shown; the bound is their sum). One run per cell.", "",
        *([record["note"], ""] if "note" in record else []),
        "| N x L | method | pattern | ours s | llm-compressor s | peer / ours | bound s (forward before, after) | "
        "ours / bound | peer / bound | ours: Wikipedia / PubMed ppl | peer: Wikipedia / PubMed ppl |",
        "|" + "---|" * 11,
    ]
    for r in record["rows"]:
        forwards = ", ".join(str(v) for v in r.get("forward_seconds_before_after", [r["forward_seconds"]]))
        peer_over_bound = r.get("peer_over_bound", r["peer_seconds"] / r["bound_seconds"])
        ours, peer = r["ours"], r["peer"]
        lines.append(
            f"| {r['size']} | {r['method']} | {r['pattern']} | {r['ours_seconds']:.1f} | {r['peer_seconds']:.1f} | "
            f"{r['peer_over_ours']:.2f}x | {r['bound_seconds']:.1f} ({forwards}) | {r['ours_over_bound']:.2f} | "
            f"{peer_over_bound:.2f} | {ours['wikipedia']:.2f} / {ours['pubmed']:.2f} | "
            f"{peer['wikipedia']:.2f} / {peer['pubmed']:.2f} |"
        )
    with open(os.path.splitext(out)[0] + ".md", "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
