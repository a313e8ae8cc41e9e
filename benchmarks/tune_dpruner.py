"""Investigate D-Pruner's options on SmolLM2 using validation text only (never the test splits).

Validation sets, disjoint from the calibration bundle and from every test split:
- general: the ABC news corpus (`general/lee_news.jsonl` of the project's data bundle; not Wikipedia);
- medical: PubMed *train*-split abstracts 1000-1299 (the bundled calibration file holds abstracts 0-999).

G (the SparseGPT pass on general text) is computed once (or loaded with --scores from a default run); each variant then recomputes only what it changes
(I for lambda / alpha / learning rate / sample count; nothing for granularity), masks a fresh copy of the
model, and measures validation perplexity. The SparseGPT and Wanda baselines calibrated on domain data are
measured on the same validation text for reference.

    python benchmarks/tune_dpruner.py --data ../shared/data --scores SCORES --out benchmarks/results/tune_dpruner.json
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time

import torch
from common import validation_texts

from optimum_dpruner import DPruner, DPrunerConfig, load_importance, perplexity
from optimum_dpruner.checkpoint.importance import save_importance
from optimum_dpruner.models.default_model import ensure_default_model
from optimum_dpruner.data.calibration import calibration_samples
from optimum_dpruner.methods import DPrunerMethod
from optimum_dpruner.stages.report import PruneReport
from optimum_dpruner.stages.run import Run
from optimum_dpruner.stages.domain_gradients import collect_dual_importance
from optimum_dpruner.stages import iter_target_linears


VARIANTS = ("granularity", "lambda", "samples", "sgd", "sgd-finetuned")



def _run(model, config) -> Run:
    """A pruning run's stages on `model`, outside `DPruner.prune` (its report is not kept)."""
    return Run(model, iter_target_linears(model, config), config, PruneReport(config.method, config.pattern, 0.5), progress=False)

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=os.path.join("..", "shared", "data"))
    parser.add_argument("--eval-windows", type=int, default=6)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--sgd", action="store_true", help="also try SGD weight updates (lr 0.03) in the domain stage")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS),
                        help="which groups of variants to run (default: all; 'sgd' and 'sgd-finetuned' also need --sgd)")
    parser.add_argument("--no-baselines", action="store_true", help="skip the dense and SparseGPT reference rows")
    parser.add_argument("--scores", default="", help="G and I saved by a default D-Pruner run (compare.py --scores-dir): reused")
    parser.add_argument("--out", default="benchmarks/results/tune_dpruner.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    texts = validation_texts(args.data)
    validation = {"general_val_ppl": texts["general"], "medical_val_ppl": texts["medical"]}
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = ensure_default_model()
    tokenizer = AutoTokenizer.from_pretrained(path)
    master = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    rows: list[dict] = []

    def evaluate(model, name: str, **info) -> None:
        row = {"variant": name, **info}
        for key, texts in validation.items():
            row[key] = round(perplexity(model, tokenizer, texts, limit=args.eval_windows, progress=False), 3)
        rows.append(row)
        print(json.dumps(row), flush=True)
        with open(args.out, "w") as f:
            json.dump({"command": "python " + " ".join(sys.argv), "date": time.strftime("%Y-%m-%d", time.gmtime()), "rows": rows}, f, indent=1)

    if not args.no_baselines:
        evaluate(master, "dense")
    for calibration in () if args.no_baselines else ("medical", "general"):  # the strongest baseline on the test-split table
        model = copy.deepcopy(master)
        DPruner(model, tokenizer, DPrunerConfig(method="sparsegpt")).prune(f"builtin:{calibration}", progress=False)
        evaluate(model, f"sparsegpt ({calibration} calibration)")

    base = DPrunerConfig()
    general = calibration_samples("builtin:general", tokenizer, base.num_samples, base.seq_len, base.seed)
    domain = calibration_samples("builtin:medical", tokenizer, base.domain_num_samples, base.seq_len, base.seed)
    saved = load_importance(args.scores) if args.scores and os.path.exists(args.scores) else None
    if saved is not None:  # same defaults, same calibration: G and I need no recomputation
        G = saved["G"]
    else:
        start = time.time()
        model = copy.deepcopy(master)
        G = DPrunerMethod(base).general_importance(_run(model, base), general)
        print(f"G computed in {time.time() - start:.0f}s", flush=True)

    def variant(name: str, domain_samples, granularities=("layer",), finetuned: bool = False, **overrides) -> None:
        config = DPrunerConfig(**overrides)
        model = copy.deepcopy(master)
        targets = iter_target_linears(model, config)
        t = time.time()
        if saved is not None and not overrides:
            importance, ratios = saved["I"], {"-": float("nan")}  # the default run's scores
        else:
            stats = collect_dual_importance(model, domain_samples, targets, G, config, progress=False)
            importance, ratios = stats.importance, stats.regulariser_ratio()
            if args.scores and not overrides and not os.path.exists(args.scores):  # the default scores, for reuse
                save_importance(args.scores, {"G": G, "I": importance}, {"config": config.to_dict()})
        seconds = round(time.time() - t, 1)
        for granularity in granularities:
            masked = model if finetuned else copy.deepcopy(master)  # finetuned: the SGD-updated weights (one granularity)
            cfg = DPrunerConfig(**{**overrides, "granularity": granularity})
            _run(masked, cfg).walk(DPrunerMethod(cfg, importance=importance), None)  # masks from I, no update
            evaluate(masked, f"{name} / {granularity}", domain_samples=len(domain_samples), domain_seconds=seconds,
                     regulariser_ratio_mean=sum(ratios.values()) / len(ratios), **overrides)

    if "granularity" in args.variants:
        variant("defaults (lambda 0.1, alpha 1e-4)", domain, granularities=("layer", "row", "block"))
    if "lambda" in args.variants:  # the regulariser's relative size grows linearly with lambda * alpha^2
        for lam in (1e11, 1e12, 1e13):
            variant(f"lambda {lam:g}", domain, granularities=("layer", "row"), lambda_reg=lam)
    if "samples" in args.variants:
        more = calibration_samples("builtin:medical", tokenizer, 2 * base.domain_num_samples, base.seq_len, base.seed)
        variant(f"{len(more)} domain samples", more, domain_num_samples=len(more))
    if args.sgd and "sgd" in args.variants:
        variant("SGD fine-tuning lr 0.03", domain, learning_rate=0.03)
    if args.sgd and "sgd-finetuned" in args.variants:  # the mask on the fine-tuned weights
        variant("SGD fine-tuning lr 0.03, mask on the fine-tuned weights", domain, finetuned=True, learning_rate=0.03,
                apply_mask_to="finetuned")


if __name__ == "__main__":
    main()
