"""Choose recovery's defaults on *validation* text: learning rate, the general/domain mix, distillation, budget,
full vs LoRA, after the default D-Pruner at 50% (or --pattern).

Never the test splits: general validation = ABC news (`general/lee_news.jsonl`), medical = PubMed train abstracts
1000-1299, legal = CaseHOLD train items 1000-1299 (`common.validation_texts`); training text = the bundled train
texts (`builtin:general`, `builtin:<domain>`), as `recover` reads them by default. The model is pruned once; each
variant recovers a fresh copy of the pruned weights and is scored by perplexity on `--eval-windows` 512-token
windows of each validation set, with the per-window NLLs kept for paired comparisons against the pruned model and
against the default variant. Every row records steps, tokens, seconds and that every pruned weight is still zero.

    python benchmarks/tune_recovery.py --domain medical --out benchmarks/results/tune_recovery_medical.json
    python benchmarks/tune_recovery.py --domain medical --variants default steps96 --max-steps 2 --eval-windows 2 \
        --out /tmp/smoke.json                                      # a smoke run of the script itself

A masked-LoRA step of SmolLM2 over one 256-token window took ~3 s on 2 CPU cores here (a full fine-tuning step
more): the default budget (192 steps of one window) is ~7-10 minutes per variant, plus ~1 minute of evaluation.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from common import command_line, smollm2, validation_texts, write_result  # noqa: E402
from tune_extraction import _paired_interval, _ppl, window_nlls  # noqa: E402

from optimum_dpruner import DPruner, DPrunerConfig, RecoveryConfig, recover  # noqa: E402

DATA = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")

#: name -> RecoveryConfig overrides (the default variant is RecoveryConfig() itself); variants that were measured
#: at 96 steps name that budget, so that each row re-runs as it was measured
VARIANTS: dict[str, dict] = {
    "default": {},
    "steps96": {"max_steps": 96},
    "steps288": {"max_steps": 288},
    "lora-lr3e-4": {"mode": "lora", "learning_rate": 3e-4, "max_steps": 96},
    "lora-lr3e-3": {"mode": "lora", "learning_rate": 3e-3, "max_steps": 96},
    "full": {"mode": "full", "max_steps": 96},
    "full-lr3e-5": {"mode": "full", "learning_rate": 3e-5, "max_steps": 96},
    "full-lr3e-4": {"mode": "full", "learning_rate": 3e-4, "max_steps": 96},
    "full-distill0.5": {"mode": "full", "distill_weight": 0.5, "max_steps": 96},
    "share0.5": {"domain_share": 0.5, "max_steps": 96},
    "share1.0": {"domain_share": 1.0, "max_steps": 96},
    "distill0.5": {"distill_weight": 0.5, "max_steps": 96},
}


def _scores(model, tokenizer, texts: dict[str, list[str]], windows: int) -> dict[str, list[float]]:
    model.eval()
    return {name: window_nlls(model, tokenizer, texts[name], windows) for name in texts}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--domain", choices=["medical", "legal"], default="medical")
    parser.add_argument("--pattern", default="unstructured")
    parser.add_argument("--variants", nargs="+", choices=sorted(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--max-steps", type=int, default=None, help="Override every variant's budget (smoke runs).")
    parser.add_argument("--eval-windows", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data", default=DATA, help="The data bundle (shared/data) holding the validation texts.")
    parser.add_argument("--resume", action="store_true",
                        help="Keep the variants already in --out and run the others (the pruned model is checked to be "
                             "the same, window by window).")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    dense, tokenizer = smollm2(args.threads)
    texts = {k: v for k, v in validation_texts(args.data).items() if k in ("general", args.domain)}
    record = {"command": command_line(__file__, sys.argv[1:] if argv is None else argv), "domain": args.domain,
              "pattern": args.pattern, "eval_windows": args.eval_windows, "rows": []}

    def row(name: str, nlls: dict[str, list[float]], **extra) -> dict:
        out = {"variant": name, **{f"{k}_ppl": _ppl(v) for k, v in nlls.items()}, "nll": nlls, **extra}
        record["rows"].append(out)
        if len(record["rows"]) >= 2:  # dense and pruned: the markdown has its reference rows
            write_result(args.out, record, markdown, echo=False)  # a partial file survives an interrupted run
        print(name, {k: round(v, 2) for k, v in out.items() if k.endswith("_ppl")}, flush=True)
        return out

    previous = None
    if args.resume and os.path.exists(args.out):
        with open(args.out, encoding="utf-8") as f:
            previous = json.load(f)
        record["command"] = previous["command"] + " ; " + record["command"]
        if previous.get("note"):
            record["note"] = previous["note"]
    row("dense", _scores(dense, tokenizer, texts, args.eval_windows))
    model = copy.deepcopy(dense)
    start = time.time()
    pruned = DPruner(model, tokenizer, DPrunerConfig(pattern=args.pattern)).prune(
        "builtin:general", f"builtin:{args.domain}", progress=False)
    row("pruned", _scores(model, tokenizer, texts, args.eval_windows), prune_seconds=round(time.time() - start, 1))
    pruned_state = {k: v.clone() for k, v in model.state_dict().items()}
    if previous is not None:
        stored = {r["variant"]: r for r in previous["rows"]}
        same = all(abs(a - b) <= 1e-4 for key in ("dense", "pruned")
                   for s in record["rows"][0]["nll"] for a, b in zip(stored[key]["nll"][s], next(
                       r for r in record["rows"] if r["variant"] == key)["nll"][s]))
        if not same:
            raise SystemExit(f"--resume: the dense or pruned model differs from the one in {args.out}; start afresh")
        record["rows"] += [r for r in previous["rows"] if r["variant"] not in ("dense", "pruned")]
    done = {r["variant"] for r in record["rows"]}
    for name in [v for v in args.variants if v not in done]:
        overrides = dict(VARIANTS[name])
        if args.max_steps is not None:
            overrides["max_steps"] = args.max_steps
        config = RecoveryConfig(**overrides)
        model.load_state_dict(pruned_state)
        result = recover(model, "builtin:general", f"builtin:{args.domain}", config, tokenizer=tokenizer,
                         teacher=dense if config.distill_weight > 0 else None, progress=False,
                         prune_config=pruned.config)
        r = result.report
        row(name, _scores(result.model, tokenizer, texts, args.eval_windows), config=config.to_dict(),
            steps=r.steps, tokens=r.tokens, seconds=round(r.seconds, 1), unmasked_after=r.unmasked_after,
            sparsity_after=r.sparsity_after)
    write_result(args.out, record, markdown)
    return 0


def markdown(record: dict) -> str:
    """Validation perplexity per variant, with the share of the pruned-to-dense gap it closes and paired intervals."""
    rows = {r["variant"]: r for r in record["rows"]}
    dense, pruned = rows["dense"], rows["pruned"]
    sets = [k[: -len("_ppl")] for k in dense if k.endswith("_ppl")]
    lines = [f"# Recovery variants on validation text ({record['domain']}, {record['pattern']})", "",
             f"`{record['command']}`", "", *([record["note"], ""] if record.get("note") else []),
             f"{record['eval_windows']} windows of 512 tokens per set. Gap closed = (pruned - variant) / (pruned - dense) "
             "perplexity; the interval is the paired 95% bootstrap of ppl(variant) / ppl(default) - 1 over windows.", "",
             "| variant | " + " | ".join(f"{s} ppl | {s} gap closed | vs default" for s in sets) + " | steps | tokens | s | zeros kept |",
             "|---|" + "---|---|---|" * len(sets) + "---|---|---|---|"]
    default = rows.get("default")
    for name, r in rows.items():
        cells = []
        for s in sets:
            gap = pruned[f"{s}_ppl"] - dense[f"{s}_ppl"]
            closed = (pruned[f"{s}_ppl"] - r[f"{s}_ppl"]) / gap if gap else math.nan
            if default is not None and name not in ("dense", "pruned", "default"):
                low, high = _paired_interval(r["nll"][s], default["nll"][s])
                versus = f"{math.exp(sum(r['nll'][s]) / len(r['nll'][s]) - sum(default['nll'][s]) / len(default['nll'][s])) - 1:+.1%} [{low:+.1%}, {high:+.1%}]"
            else:
                versus = "-"
            cells += [f"{r[f'{s}_ppl']:.2f}", f"{closed:.0%}" if name != "dense" else "-", versus]
        kept = "-" if "unmasked_after" not in r else ("yes" if r["unmasked_after"] == 0 else f"NO ({r['unmasked_after']})")
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {r.get('steps', '-')} | {r.get('tokens', '-')} | "
                     f"{r.get('seconds', r.get('prune_seconds', '-'))} | {kept} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
