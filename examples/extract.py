"""Extract a domain-specific model from SmolLM2 with D-Pruner, and compare perplexity before and after.

This is the flow `medical.py` and `legal.py` run with their domain's defaults:
load -> measure -> prune (general + domain calibration) -> measure -> save.
"""

from __future__ import annotations

import argparse

from optimum_dpruner import DPruner, DPrunerConfig
from optimum_dpruner.evaluation import format_comparison, perplexities


def main(domain: str, argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=f"Extract a {domain} model with D-Pruner.")
    parser.add_argument("--model", default=None, help="model folder, hub id or .gguf (default: embedded SmolLM2-135M-Instruct)")
    parser.add_argument("--general-dataset", default="builtin:general", help="general calibration data")
    parser.add_argument("--domain-dataset", default=f"builtin:{domain}", help=f"{domain} calibration data")
    parser.add_argument("--sparsity", type=float, default=None, help="fraction of zeros (default 0.5)")
    parser.add_argument("--pattern", default="unstructured", help="'unstructured' or N:M such as 2:4")
    parser.add_argument("--domain-weight", type=float, default=None,
                        help="share of the domain windows in the reconstruction pass's Hessian (default 0.75)")
    parser.add_argument("--paper", action="store_true", help="D-Pruner exactly as the paper (DPrunerConfig.paper())")
    parser.add_argument("--num-samples", type=int, default=32, help="general calibration sequences")
    parser.add_argument("--domain-num-samples", type=int, default=16,
                        help="domain calibration sequences (16 keeps `make demo` under 10 minutes on 2 cores; library default 32)")
    parser.add_argument("--seq-len", type=int, default=512, help="tokens per calibration sequence")
    parser.add_argument("--domain-batch-size", type=int, default=1,
                        help="domain sequences per step; under `accelerate launch` a multiple of the process count")
    parser.add_argument("--eval-windows", type=int, default=4, help="512-token windows per perplexity")
    parser.add_argument("--output", default=f"outputs/smollm2-{domain}", help="folder for the pruned model")
    args = parser.parse_args(argv)

    config = (DPrunerConfig.paper if args.paper else DPrunerConfig)(
        method="dpruner",
        sparsity=args.sparsity,
        pattern=args.pattern,
        **({"domain_weight": args.domain_weight} if args.domain_weight is not None else {}),
        num_samples=args.num_samples,
        domain_num_samples=args.domain_num_samples,
        seq_len=args.seq_len,
        domain_batch_size=args.domain_batch_size,
    )
    pruner = DPruner.from_pretrained(args.model, config=config)
    held_out = {"general (Wikipedia test)": "builtin:general", f"{domain} (test)": f"builtin:{domain}"}
    before = perplexities(pruner.model, pruner.tokenizer, held_out, limit=args.eval_windows)
    result = pruner.prune(args.general_dataset, args.domain_dataset)
    after = perplexities(result.model, result.tokenizer, held_out, limit=args.eval_windows)

    print(result.report.table(max_rows=7))
    print()
    print(format_comparison(before, after))
    print(f"\nsaved to {result.save_pretrained(args.output, overwrite=True)}")
