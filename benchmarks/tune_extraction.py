"""Explore the domain-extraction recipe on *validation* text (issue 17): calibration mixing, fixed-mask
reconstruction and the dual score, against the baselines on the same windows.

Never the test splits: general validation = ABC news (`general/lee_news.jsonl`), medical = PubMed train abstracts
1000-1299, legal = CaseHOLD train items 1000-1299 (`common.validation_texts`); calibration = the bundled train
texts (`builtin:general`, `builtin:<domain>`), as the library uses them. Each variant prunes a fresh copy of
SmolLM2 at 50% (or --pattern) and is scored by perplexity on `--eval-windows` 512-token windows of each validation
set; the per-window NLLs are kept so that differences can be tested pairwise (`--summary`).

D-Pruner's domain importance I (the gradient pass) depends only on the domain windows and the regulariser, so it is
computed once per setting and reused by every variant that needs it (`importance=`); each variant then runs its
own block-wise pass.

    python benchmarks/tune_extraction.py --domain medical --out benchmarks/results/tune_extraction_medical.json
    python benchmarks/tune_extraction.py --domain medical --out ... --summary     # table from the saved rows
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(__file__))
from common import validation_texts  # noqa: E402

from optimum_dpruner import DPruner, DPrunerConfig  # noqa: E402
from optimum_dpruner.models.default_model import ensure_default_model  # noqa: E402
from optimum_dpruner.evaluation import tokenize_corpus  # noqa: E402


def _variants(pattern: str) -> dict[str, dict]:
    """name -> {"config": DPrunerConfig overrides, "data": "general" | "domain" | "both", "importance": key}."""
    recipe = dict(method="dpruner", general_importance="none", lambda_reg=0.0, reconstruction="obs")
    v: dict[str, dict] = {
        "dense": {"config": None},
        "sparsegpt general": {"config": dict(method="sparsegpt"), "data": "general"},
        "sparsegpt domain": {"config": dict(method="sparsegpt", domain_weight=1.0), "data": "both"},
        "wanda general": {"config": dict(method="wanda"), "data": "general"},
        "wanda domain": {"config": dict(method="wanda", domain_weight=1.0), "data": "both"},
        "wanda mix 0.5": {"config": dict(method="wanda", domain_weight=0.5), "data": "both"},
        "dpruner paper": {"config": dict(method="dpruner", general_importance="sparsegpt", lambda_reg=0.1, alpha=1e-4,
                                         reconstruction="none"), "data": "both"},
        "I mask + obs, beta 0.5": {"config": dict(recipe, domain_weight=0.5), "data": "both", "importance": "I"},
        "G_mix mask + obs (no I), beta 0.5": {"config": dict(recipe, domain_weight=0.5), "rank_share": 1.0,
                                               "data": "both", "importance": "I"},
    }
    for beta in (0.25, 0.5, 0.75):
        v[f"sparsegpt mix {beta}"] = {"config": dict(method="sparsegpt", domain_weight=beta), "data": "both"}
    for beta in (0.0, 0.25, 0.5, 0.75, 1.0):
        v[f"rank sum, beta {beta}"] = {"config": dict(recipe, domain_weight=beta), "rank_share": 0.5,
                                       "data": "both", "importance": "I"}
    for share in (0.25, 0.75):
        v[f"ranks {1 - share:g} I + {share:g} G, beta 0.5"] = {
            "config": dict(recipe, domain_weight=0.5), "rank_share": share, "data": "both", "importance": "I"}
    v["rank sum, beta 0.5, row groups"] = {"config": dict(recipe, domain_weight=0.5, granularity="row"), "rank_share": 0.5,
                                           "data": "both", "importance": "I"}
    def product(exponent, beta, key="I", **extra):  # SparseGPT's adaptive choice on saliency x (I / mean I)^e
        return {"config": dict(recipe, domain_weight=beta, mask_score="saliency_x_importance",
                               importance_exponent=exponent, **extra), "data": "both", "importance": key}

    for exponent in (0.25, 0.5, 1.0, 1.5, 2.0):
        v[f"sparsegpt x I^{exponent:g}, beta 0.5"] = product(exponent, 0.5)
    for beta in (0.25, 0.75, 1.0):
        v[f"sparsegpt x I^1, beta {beta}"] = product(1.0, beta)
    for exponent, beta in ((0.25, 0.75), (0.5, 0.75), (0.5, 0.9), (1.0, 0.9)):  # the 2:4 search towards the domain
        v[f"sparsegpt x I^{exponent:g}, beta {beta}"] = product(exponent, beta)
    for granularity in ("row", "layer"):
        v[f"sparsegpt x I^1, beta 0.5, {granularity} groups"] = product(1.0, 0.5, granularity=granularity)
    for n in (16, 64):
        v[f"sparsegpt x I^1, beta 0.5, {n} domain windows"] = product(1.0, 0.5, f"I{n}", domain_num_samples=n)
    for n in (8, 16):  # issue 17's time criterion: fewer general windows in the recipe's block-wise pass
        v[f"sparsegpt x I^1, beta 0.75, {n} general windows"] = product(1.0, 0.75, num_samples=n)
    for n in (16, 64):
        v[f"rank sum, beta 0.5, {n} domain windows"] = {
            "config": dict(recipe, domain_weight=0.5, domain_num_samples=n), "rank_share": 0.5,
            "data": "both", "importance": f"I{n}"}
    first = ["dense", "sparsegpt general", "sparsegpt domain", "sparsegpt mix 0.5", "rank sum, beta 0.5",
             "sparsegpt x I^0.5, beta 0.5", "I mask + obs, beta 0.5", "sparsegpt x I^1, beta 0.5",
             "sparsegpt x I^0.25, beta 0.5", "sparsegpt x I^2, beta 0.5",
             "sparsegpt x I^1, beta 0.25", "sparsegpt x I^1, beta 0.75", "sparsegpt mix 0.25", "sparsegpt mix 0.75",
             "wanda domain", "wanda mix 0.5", "dpruner paper", "sparsegpt x I^1, beta 1.0",
             "sparsegpt x I^1, beta 0.5, 64 domain windows", "sparsegpt x I^1, beta 0.5, 16 domain windows",
             "sparsegpt x I^1, beta 0.5, row groups", "sparsegpt x I^1, beta 0.5, layer groups",
             "sparsegpt x I^1.5, beta 0.5",
             "G_mix mask + obs (no I), beta 0.5", "rank sum, beta 0.25", "rank sum, beta 0.75"]
    v = {name: v[name] for name in first + [n for n in v if n not in first]}
    for spec in v.values():
        if spec["config"] is not None:
            spec["config"]["pattern"] = pattern
            if pattern != "unstructured":
                spec["config"].pop("sparsity", None)
    return v


def _normalized_rank(score: torch.Tensor) -> torch.Tensor:
    flat = score.reshape(-1)
    ranks = torch.empty_like(flat)
    ranks[torch.argsort(flat, stable=True)] = torch.arange(1, flat.numel() + 1, dtype=flat.dtype)
    return (ranks / flat.numel()).reshape(score.shape)


def _rank_sum_method(config, importance, share):
    """The tried and dropped dual score: a fixed mask from (1 - share) rank(I) + share rank(G_mix) per matrix, G_mix
    the OBS saliency under the pass's mixed Hessian, then the OBS update of the survivors."""
    from optimum_dpruner.methods import DPrunerMethod, ObsReconstruction
    from optimum_dpruner.methods.obs import obs_saliency
    from optimum_dpruner.methods.statistics import Hessian

    class RankSum(DPrunerMethod):
        statistic = Hessian

        def score(self, name, weight, statistic):
            upper, dead = statistic.inverse_factor(self.config.damp)
            general = obs_saliency(weight.detach().float().masked_fill(dead.unsqueeze(0), 0.0), upper)
            return (1 - share) * _normalized_rank(importance[name].float()) + share * _normalized_rank(general)

    return ObsReconstruction(RankSum(config, importance=importance))


def _prune_custom(model, tokenizer, config, data, method) -> float:
    """A variant whose method is not a library option: the library's windows and mixing; returns seconds."""
    from optimum_dpruner.stages import prune_blockwise
    from optimum_dpruner.stages.calibration import calibration_windows

    start = time.time()
    windows = calibration_windows(data[0], data[1], tokenizer, model.config, config)
    samples, weights = windows.statistics(config.domain_weight)
    prune_blockwise(model, samples, method, config, progress=False, sample_weights=weights)
    return time.time() - start


@torch.no_grad()
def window_nlls(model, tokenizer, texts: list[str], windows: int, size: int = 512) -> list[float]:
    """Mean NLL of each of the first `windows` non-overlapping `size`-token windows of the joined texts."""
    ids = tokenize_corpus(texts, tokenizer, max_tokens=windows * size)
    out = []
    for start in range(0, len(ids) - size + 1, size):
        chunk = ids[start : start + size].unsqueeze(0)
        out.append(float(model(input_ids=chunk, labels=chunk, use_cache=False).loss))
    return out


def _ppl(nlls: list[float]) -> float:
    return math.exp(sum(nlls) / len(nlls))


def _paired_interval(a: list[float], b: list[float], resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95% percentile-bootstrap interval of ppl(a) / ppl(b) - 1 over windows resampled jointly (same windows)."""
    generator = torch.Generator().manual_seed(seed)
    x, y = torch.tensor(a, dtype=torch.float64), torch.tensor(b, dtype=torch.float64)
    idx = torch.randint(len(a), (resamples, len(a)), generator=generator)
    ratios = torch.exp(x[idx].mean(1) - y[idx].mean(1)) - 1
    return float(ratios.quantile(0.025)), float(ratios.quantile(0.975))


def summary(record: dict, reference: str) -> str:
    rows = record["rows"]
    ref = next((r for r in rows if r["name"] == reference), None)
    head = ["variant", "general val ppl", "domain val ppl", f"general vs {reference}", f"domain vs {reference}", "prune s"]
    lines = [f"Command: `{record['command']}`", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["name"], f"{_ppl(r['general']):.2f}", f"{_ppl(r['domain']):.2f}"]
        for side in ("general", "domain"):
            if ref is None or r is ref:
                cells.append("-")
            else:
                low, high = _paired_interval(r[side], ref[side])
                change = _ppl(r[side]) / _ppl(ref[side]) - 1
                cells.append(f"{change:+.1%} [{low:+.1%}, {high:+.1%}]")
        cells.append(f"{r.get('prune_seconds', 0):.0f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--domain", choices=["medical", "legal"], default="medical")
    parser.add_argument("--pattern", default="unstructured")
    parser.add_argument("--data", default=os.path.join("..", "shared", "data"))
    parser.add_argument("--seq-len", type=int, default=256, help="calibration window length (exploration size)")
    parser.add_argument("--num-samples", type=int, default=32, help="general (and default domain) calibration windows")
    parser.add_argument("--eval-windows", type=int, default=24, help="512-token validation windows per set")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--only", nargs="*", help="run only these variants (names)")
    parser.add_argument("--reference", default="sparsegpt domain", help="row the summary compares against")
    parser.add_argument("--summary", action="store_true", help="print the table of the saved rows and exit")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    record = {"command": "python " + " ".join(a for a in sys.argv if a != "--summary"), "rows": []}
    if os.path.exists(args.out):
        with open(args.out) as f:
            record = json.load(f)
    if args.summary:
        print(summary(record, args.reference))
        return
    torch.set_num_threads(args.threads)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = ensure_default_model()
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    pristine = {k: v.clone() for k, v in model.state_dict().items()}
    texts = validation_texts(args.data)
    done = {r["name"] for r in record["rows"]}
    importance: dict[str, dict] = {}
    for name, spec in _variants(args.pattern).items():
        if name in done or (args.only and name not in args.only):
            continue
        model.load_state_dict(pristine)
        row: dict = {"name": name, "config": spec["config"], **({"rank_share": spec["rank_share"]} if "rank_share" in spec else {})}
        start = time.time()
        if spec["config"] is not None:
            config = DPrunerConfig(**{"num_samples": args.num_samples, "seq_len": args.seq_len,
                                      "domain_num_samples": args.num_samples, **spec["config"]})
            data = {"general": ("builtin:general",), "domain": (f"builtin:{args.domain}",),
                    "both": ("builtin:general", f"builtin:{args.domain}")}[spec["data"]]
            key = spec.get("importance")
            if key and key not in importance:  # the domain gradient pass, once per setting
                scores_config = DPrunerConfig(**{**config.to_dict(), "method": "dpruner", "general_importance": "none",
                                                 "lambda_reg": 0.0, "reconstruction": "none", "mask_score": "importance"})
                scores = DPruner(model, tokenizer, scores_config).prune(*data, progress=False)
                importance[key] = {"I": scores.importance["I"], "seconds": scores.report.stage_seconds["domain_importance"]}
                model.load_state_dict(pristine)
            if "rank_share" in spec:
                method = _rank_sum_method(config, importance[key]["I"], spec["rank_share"])
                seconds = _prune_custom(model, tokenizer, config, data, method)
                row["prune_seconds"] = round(seconds + importance[key]["seconds"], 1)
            else:
                result = DPruner(model, tokenizer, config).prune(
                    *data, importance={"I": importance[key]["I"]} if key else None, progress=False)
                row["prune_seconds"] = round(sum(result.report.stage_seconds.values()) + (importance[key]["seconds"] if key else 0), 1)
                row["stage_seconds"] = {k: round(v, 1) for k, v in result.report.stage_seconds.items()}
                row["sparsity"] = round(result.report.sparsity, 4)
        row["general"] = window_nlls(model, tokenizer, texts["general"], args.eval_windows)
        row["domain"] = window_nlls(model, tokenizer, texts[args.domain], args.eval_windows)
        row["wall_seconds"] = round(time.time() - start, 1)
        record["rows"].append(row)
        with open(args.out, "w") as f:
            json.dump(record, f, indent=1)
        print(f"{name}: general {_ppl(row['general']):.2f} domain {_ppl(row['domain']):.2f} "
              f"({row.get('prune_seconds', 0)} s prune, {row['wall_seconds']} s)", flush=True)
    with open(os.path.splitext(args.out)[0] + ".md", "w") as f:
        f.write(summary(record, args.reference))


if __name__ == "__main__":
    main()
