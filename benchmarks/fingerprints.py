"""Fingerprints of the pruned weights and masks of every method and pattern: a refactor must leave them bit-identical.

Uses only the public API (`DPruner`, `DPrunerConfig`), so the same script runs before and after a change of the
package's inside. Two sets of cases:
- `tiny`: a randomly initialised 2-layer Llama (hidden 64, the test suite's `tiny_llama`, seed 0) for every method,
  pattern, comparison group and reconstruction the contract tests cover, plus the paper preset;
- `smollm2`: the embedded SmolLM2-135M-Instruct (fp32) with the default D-Pruner, the paper preset, SparseGPT on
  mixed text, Wanda and the default D-Pruner at 2:4, on 8 x 128-token windows of each calibration set (small, so
  that the five prunes take minutes; the bits are what is compared, not the quality).

Usage:
    python benchmarks/fingerprints.py --cases tiny smollm2 --record benchmarks/results/fingerprints.json
    python benchmarks/fingerprints.py --cases tiny smollm2 --check benchmarks/results/fingerprints.json

Bits depend on the CPU and the thread count (2 threads here); compare only on the machine that recorded them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys

import torch

TINY_CASES = {
    # name: (config options, domain data?)
    "magnitude-unstructured": ({"method": "magnitude"}, False),
    "magnitude-row": ({"method": "magnitude", "granularity": "row"}, False),
    "magnitude-2:4": ({"method": "magnitude", "pattern": "2:4"}, False),
    "magnitude-obs": ({"method": "magnitude", "reconstruction": "obs"}, False),
    "wanda-unstructured": ({"method": "wanda"}, False),
    "wanda-layer": ({"method": "wanda", "granularity": "layer"}, False),
    "wanda-block": ({"method": "wanda", "granularity": "block"}, False),
    "wanda-2:4": ({"method": "wanda", "pattern": "2:4"}, False),
    "wanda-4:8": ({"method": "wanda", "pattern": "4:8"}, False),
    "wanda-obs": ({"method": "wanda", "reconstruction": "obs"}, False),
    "wanda-mixed": ({"method": "wanda"}, True),
    "sparsegpt-unstructured": ({"method": "sparsegpt"}, False),
    "sparsegpt-row": ({"method": "sparsegpt", "granularity": "row"}, False),
    "sparsegpt-layer": ({"method": "sparsegpt", "granularity": "layer"}, False),
    "sparsegpt-2:4": ({"method": "sparsegpt", "pattern": "2:4"}, False),
    "sparsegpt-4:8": ({"method": "sparsegpt", "pattern": "4:8"}, False),
    "sparsegpt-mixed": ({"method": "sparsegpt"}, True),
    "sparsegpt-domain-only": ({"method": "sparsegpt", "domain_weight": 1.0}, True),
    "dpruner-unstructured": ({"method": "dpruner"}, True),
    "dpruner-block": ({"method": "dpruner", "granularity": "block"}, True),
    "dpruner-row": ({"method": "dpruner", "granularity": "row"}, True),
    "dpruner-2:4": ({"method": "dpruner", "pattern": "2:4"}, True),
    "dpruner-mask-importance": ({"method": "dpruner", "mask_score": "importance"}, True),
    "dpruner-general-obs": ({"method": "dpruner", "general_importance": "obs"}, True),
    "dpruner-no-general": ({"method": "dpruner", "general_importance": "none"}, True),
    "dpruner-lr": ({"method": "dpruner", "learning_rate": 1e-3}, True),
    "paper": ({"preset": "paper"}, True),
    "paper-2:4": ({"preset": "paper", "pattern": "2:4"}, True),
    "paper-lambda": ({"preset": "paper", "lambda_reg": 1e6, "learning_rate": 1e-3}, True),
}
TINY_SIZES = {"block_size": 32, "num_samples": 4, "seq_len": 64, "domain_num_samples": 2, "seed": 0}

SMOLLM2_CASES = {
    "dpruner-unstructured": ({"method": "dpruner"}, True),
    "paper": ({"preset": "paper"}, True),
    "sparsegpt-mixed": ({"method": "sparsegpt"}, True),
    "wanda-unstructured": ({"method": "wanda"}, False),
    "dpruner-2:4": ({"method": "dpruner", "pattern": "2:4"}, True),
}
SMOLLM2_SIZES = {"num_samples": 8, "seq_len": 128, "domain_num_samples": 8, "seed": 0}


def _config(options: dict, sizes: dict):
    from optimum_dpruner import DPrunerConfig

    options = dict(options)
    if options.pop("preset", None) == "paper":
        return DPrunerConfig.paper(**sizes, **options)
    return DPrunerConfig(**sizes, **options)


def fingerprint(model) -> dict[str, str]:
    """sha256 of every parameter's bytes (all of them: untouched ones must stay so) and of the zero mask of all."""
    weights, masks = hashlib.sha256(), hashlib.sha256()
    for name, param in sorted(model.named_parameters()):
        value = param.detach().cpu().contiguous()
        weights.update(name.encode())
        weights.update(value.numpy().tobytes())
        masks.update(name.encode())
        masks.update((value == 0).numpy().tobytes())
    return {"weights": weights.hexdigest(), "masks": masks.hexdigest()}


def _tiny_model():
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig

    from optimum_dpruner import ensure_default_model

    tokenizer = AutoTokenizer.from_pretrained(ensure_default_model())
    config = LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, vocab_size=len(tokenizer), max_position_embeddings=512)
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_config(config).eval(), tokenizer


def _smollm2_model():
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from optimum_dpruner import ensure_default_model

    path = ensure_default_model()
    return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval(), AutoTokenizer.from_pretrained(path)


def run_cases(which: str, only: list[str] | None = None) -> dict[str, dict[str, str]]:
    from optimum_dpruner import DPruner

    cases, sizes, make = {
        "tiny": (TINY_CASES, TINY_SIZES, _tiny_model),
        "smollm2": (SMOLLM2_CASES, SMOLLM2_SIZES, _smollm2_model),
    }[which]
    out = {}
    for name, (options, domain) in cases.items():
        if only and name not in only:
            continue
        model, tokenizer = make()
        config = _config(options, sizes)
        DPruner(model, tokenizer, config).prune("builtin:general", "builtin:medical" if domain else None, progress=False)
        out[name] = fingerprint(model)
        print(f"{which}/{name}: {out[name]['weights'][:16]}", flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", choices=["tiny", "smollm2"], default=["tiny"])
    parser.add_argument("--threads", type=int, default=2)
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--record", metavar="JSON")
    group.add_argument("--check", metavar="JSON")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    found = {which: run_cases(which) for which in args.cases}
    if args.record:
        with open(args.record, "w", encoding="utf-8") as f:
            json.dump({"command": "python benchmarks/fingerprints.py " + " ".join(sys.argv[1:] if argv is None else argv),
                       "threads": args.threads, **found}, f, indent=1, sort_keys=True)
        return 0
    with open(args.check, encoding="utf-8") as f:
        recorded = json.load(f)
    differ = [f"{w}/{n}" for w in found for n in found[w] if recorded[w][n] != found[w][n]]
    print(f"{sum(len(v) for v in found.values()) - len(differ)} identical, {len(differ)} differ: {differ}")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
