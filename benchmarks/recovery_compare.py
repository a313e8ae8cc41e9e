"""Recovery after pruning on the full test sets: before and after `RecoveryConfig()` for each pruned model, and the
dense model fine-tuned with the same budget (what a user compares against).

    python benchmarks/recovery_compare.py --domain medical --out benchmarks/results/recovery_medical.json
    python benchmarks/recovery_compare.py --domain medical --pattern 2:4 --out benchmarks/results/recovery_medical_2of4.json
    python benchmarks/recovery_compare.py --domain medical --out ... --tables-only      # markdown + plots from the JSON

Rows (`--rows`): `dpruner` (the default recipe, general + domain), `sparsegpt-domain` (SparseGPT on domain text),
`mixcal` (SparseGPT on general + domain text mixed at the library's `domain_weight`) and `dense` (no pruning). Each
row runs in its own subprocess (its peak memory is its own): prune with the very config stored in
`compare_<domain>_full.json`, recover with `RecoveryConfig()` on `builtin:general` + `builtin:<domain>`
(the bundled train texts), then measure perplexity on every 512-token window of the test sets (Wikipedia test
articles; PubMed test abstracts or US legislation), storing per-window NLLs so any two rows compare by a paired
bootstrap. "Before" is the stored row of `compare_<domain>_full.json`, reused when the re-pruned model reproduces
its first windows' NLLs (checked, recorded as `before_reproduced`); otherwise it is measured again.

During training each row evaluates 8 windows of the *validation* texts (`common.validation_texts`) every
`--eval-steps` steps: the perplexity-vs-tokens curves (`<out>_curves.png`). The trade-off plot
(`<out>_tradeoff.png`) draws general against domain test perplexity with an arrow from each pruned model to its
recovered one. Tokens/s is the throughput of the optimizer steps alone (evaluations left out), with the mask kept
(pruned rows) and without one (the dense row), in the same command: compare them only inside one file.

A masked-LoRA SmolLM2 step (one 256-token window, forward + backward + AdamW) takes ~2.2 s on 2 CPU cores; a row costs
pruning (1-5 min) + the default budget (~7 min of steps, ~10 with the validation evaluations) + the full test
sets (~10 min at 2 threads).
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from common import command_line, smollm2, validation_texts  # noqa: E402

DATA = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")
RESULTS = os.path.join(os.path.dirname(__file__), "results")
#: row -> (compare_*_full.json run key as method/calibration, the prune() data)
ROWS = {
    "dpruner": ("dpruner", "general+domain", "both"),
    "sparsegpt-domain": ("sparsegpt", "domain", "domain"),
    "mixcal": ("sparsegpt", "mixed", "both"),
    "dense": ("dense", "-", None),
}
SETS = ("general_ppl", "domain_ppl")
CHECK_WINDOWS = 4  # windows re-measured to check that the re-pruned model is the stored one


def _compare_file(domain: str) -> str:
    return os.path.join(RESULTS, f"compare_{domain}_full.json")  # both patterns


def _stored_row(domain: str, pattern: str, row: str) -> dict:
    method, calibration, _ = ROWS[row]
    wanted = f"{domain}/{method}/{'-' if row == 'dense' else pattern}/{calibration}"
    with open(_compare_file(domain), encoding="utf-8") as f:
        rows = json.load(f)["rows"]
    for r in rows:
        if r["run"] == wanted:
            return r
    raise SystemExit(f"{wanted} is not in {_compare_file(domain)}")


def _perplexities(model, tokenizer, domain: str, limit: int | None) -> dict:
    from optimum_dpruner.evaluation import evaluate_perplexity

    out = {}
    for name, source in {"general_ppl": "builtin:general", "domain_ppl": f"builtin:{domain}"}.items():
        wall = time.time()
        result = evaluate_perplexity(model, tokenizer, source, window=512, limit=limit, spread=limit is not None,
                                     progress=False)
        out.update({name: round(result.perplexity, 3), f"{name}_low": round(result.low, 3),
                    f"{name}_high": round(result.high, 3),
                    f"{name}_windows": {"nll": [round(x, 4) for x in result.window_nll], "tokens": result.window_tokens},
                    f"{name}_seconds": round(time.time() - wall, 1)})
    return out


def _first_windows_match(model, tokenizer, domain: str, stored: dict) -> bool:
    """True when the model's first CHECK_WINDOWS domain test windows have the stored NLL sums (to 1e-3 relative)."""
    from optimum_dpruner.evaluation import evaluate_perplexity

    result = evaluate_perplexity(model, tokenizer, f"builtin:{domain}", window=512, limit=CHECK_WINDOWS, progress=False)
    reference = stored["domain_ppl_windows"]["nll"][:CHECK_WINDOWS]
    return all(abs(a - b) <= 1e-3 * abs(b) for a, b in zip(result.window_nll, reference))


def _step_timer():
    """A Trainer callback summing the wall time of the optimizer steps alone (forward, backward, the mask's hooks and
    re-zeroing, AdamW), so that evaluations during training do not enter tokens/s."""
    from transformers import TrainerCallback

    class StepTimer(TrainerCallback):
        seconds, _start = 0.0, 0.0

        def on_step_begin(self, args, state, control, **kwargs):
            self._start = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            self.seconds += time.perf_counter() - self._start

    return StepTimer()


def _single(args: argparse.Namespace) -> dict:
    from optimum_dpruner import DPruner, DPrunerConfig, RecoveryConfig, recover

    stored = _stored_row(args.domain, args.pattern, args.single)
    dense, tokenizer = smollm2(args.threads)
    model = copy.deepcopy(dense)
    out: dict = {"row": args.single, "domain": args.domain, "pattern": args.pattern, "before_run": stored["run"]}
    prune_config = None
    if args.single != "dense":
        # None in a stored config meant "resolved at run time"; today's fields hold those defaults themselves
        config = DPrunerConfig(**{k: v for k, v in stored["config"].items()
                                  if k in DPrunerConfig.__dataclass_fields__ and v is not None})
        data = ROWS[args.single][2]
        both = ("builtin:general", f"builtin:{args.domain}")
        start = time.time()
        pruned = DPruner(model, tokenizer, config).prune(*(both if data == "both" else both[1:]), progress=False)
        out["prune_seconds"] = round(time.time() - start, 1)
        prune_config = pruned.config
    same = _first_windows_match(model, tokenizer, args.domain, stored)
    out["before_reproduced"] = same
    before = {k: stored[k] for k in stored if k.startswith(SETS)} if same and args.eval_windows is None else \
        _perplexities(model, tokenizer, args.domain, args.eval_windows)
    out["before"] = before
    recovery = RecoveryConfig(**json.loads(args.recovery_json)) if args.recovery_json else RecoveryConfig()
    val = validation_texts(args.data)
    monitored = RecoveryConfig(**{**recovery.to_dict(), "eval_steps": args.eval_steps})  # eval_steps: curves only
    result = recover(model, "builtin:general", f"builtin:{args.domain}", monitored, tokenizer=tokenizer,
                     teacher=dense if recovery.distill_weight > 0 else None, progress=False, prune_config=prune_config,
                     allow_dense=args.single == "dense", eval_ds={"general": val["general"], "domain": val[args.domain]},
                     eval_windows=8, callbacks=[timer := _step_timer()])
    report = result.report
    out["recovery"] = {"config": recovery.to_dict(), **report.to_dict(), "step_seconds": round(timer.seconds, 1),
                       "tokens_per_second": round(report.tokens / timer.seconds, 1)}
    out["after"] = _perplexities(result.model, tokenizer, args.domain, args.eval_windows)
    return out


def _paired(a: dict, b: dict):
    """ppl(a) / ppl(b) - 1 with its paired 95% bootstrap interval over the same windows."""
    from optimum_dpruner.evaluation import paired_bootstrap, perplexity_statistic

    return paired_bootstrap(perplexity_statistic(a["nll"], a["tokens"]), perplexity_statistic(b["nll"], b["tokens"]),
                            len(a["tokens"]), relative=True)


def _ratio(a: dict, b: dict, key: str) -> str:
    d = _paired(a[f"{key}_windows"], b[f"{key}_windows"])
    return f"{d.difference:+.1%} [{d.low:+.1%}, {d.high:+.1%}]{'*' if d.significant else ''}"


def _ppl_cell(values: dict, key: str) -> str:
    return f"{values[key]:.2f} [{values[f'{key}_low']:.2f}, {values[f'{key}_high']:.2f}]"


def markdown(record: dict) -> str:
    """Before / after per row, the share of the gap to the dense model each recovery closes, the paired comparisons of
    the recovered D-Pruner with the recovered baselines, throughput and memory."""
    rows = {r["row"]: r for r in record["rows"]}
    # the gap's reference is the unpruned model before fine-tuning: the dense row's "before", else its stored row
    dense = rows.get("dense", {}).get("before") or {
        k: v for k, v in _stored_row(record["domain"], record["pattern"], "dense").items() if k.startswith(SETS)}
    lines = [f"# Recovery on the full test sets ({record['domain']}, {record['pattern']})", "",
             f"Command: `{record['command']}`", "",
             *([f"Rows kept from earlier commands: {'; '.join(f'`{c}`' for c in record['earlier_commands'])}", ""]
               if record.get("earlier_commands") else []),
             *([record["note"], ""] if record.get("note") else []),
             f"Date: {record['date']}; SmolLM2-135M-Instruct (fp32), {record['threads']} torch threads, CPU. Perplexity "
             "on every 512-token test window (general: Wikipedia; domain: "
             f"{'PubMed abstracts' if record['domain'] == 'medical' else 'US legislation'}), 95% bootstrap intervals over "
             "windows. Gap closed = (before - after) / (before - dense). Recovery: `RecoveryConfig()` "
             f"(`{json.dumps({k: v for k, v in record['recovery_config'].items() if k in ('mode', 'learning_rate', 'max_steps', 'seq_len', 'domain_share', 'distill_weight', 'train_params')})}`, "
             f"{DEFAULT_STEPS_NOTE}) on the bundled train texts; the dense row is the unpruned model fine-tuned with the same budget.", "",
             "| row | general before | general after | gap closed | domain before | domain after | gap closed | steps | tokens | tokens/s | peak RSS MiB | zeros kept |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in rows.items():
        rec, cells = r["recovery"], [name]
        for key in SETS:
            cells += [_ppl_cell(r["before"], key), _ppl_cell(r["after"], key)]
            gap = r["before"][key] - dense[key]
            cells.append("-" if name == "dense" else f"{(r['before'][key] - r['after'][key]) / gap:.1%}")
        kept = "-" if name == "dense" else ("yes" if rec["unmasked_after"] == 0 and rec["verified"] is not False else
                                            f"NO ({rec['unmasked_after']})")
        peak = max(rec["peak_rss_bytes"].values(), default=0) / 2**20
        cells += [str(rec["steps"]), f"{rec['tokens']:,}", f"{rec['tokens_per_second']:.0f}", f"{peak:.0f}", kept]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Tokens/s: optimizer steps alone (forward, backward, the mask's hooks and re-zeroing, AdamW), without the "
              "evaluations during training. Before: " + ", ".join(
                  f"{n} {'re-pruned and reproduced' if r['before_reproduced'] else 'MEASURED AGAIN (not reproduced)'}"
                  for n, r in rows.items()) + f" (stored rows of `compare_{record['domain']}_full.json`)."]
    if "dpruner" in rows:
        lines += ["", "Paired comparisons after recovery (ppl ratio - 1, 95% paired bootstrap; `*`: excludes 0):", "",
                  "| recovered D-Pruner against | general | domain |", "|---|---|---|"]
        for other in ("sparsegpt-domain", "mixcal", "dense"):
            if other in rows:
                lines.append(f"| recovered {other} | " + " | ".join(
                    _ratio(rows["dpruner"]["after"], rows[other]["after"], key) for key in SETS) + " |")
        lines.append("| D-Pruner before recovery | " + " | ".join(
            _ratio(rows["dpruner"]["after"], rows["dpruner"]["before"], key) for key in SETS) + " |")
    if "dense" in rows and "dpruner" in rows:
        ratio = rows["dpruner"]["recovery"]["tokens_per_second"] / rows["dense"]["recovery"]["tokens_per_second"]
        lines += ["", f"Throughput with the mask kept: {ratio:.2f}x the dense fine-tuning's tokens/s (same Trainer, "
                  "same budget, same command; one run each, so a few percent is noise)."]
    lines += ["", "Curves: `" + os.path.basename(_figure(record, "curves")) + "` (validation perplexity, 8 windows of "
              "256 tokens per set, against training tokens); trade-off: `" + os.path.basename(_figure(record, "tradeoff")) + "`."]
    return "\n".join(lines) + "\n"


DEFAULT_STEPS_NOTE = "one 256-token window a step"


def _figure(record: dict, kind: str) -> str:
    """The figure beside the JSON file (`record["out"]`): `<name>_curves.png`, `<name>_tradeoff.png`."""
    return f"{os.path.splitext(record['out'])[0]}_{kind}.png"


def plots(record: dict) -> None:
    """Validation perplexity against training tokens per row, and general against domain test perplexity with an
    arrow from each model before recovery to after."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for r in record["rows"]:
        rec = r["recovery"]
        per_step = rec["tokens"] / max(rec["steps"], 1)
        for ax, side in zip(axes, ("general", "domain")):
            points = [(step * per_step, math.exp(m[f"eval_{side}_loss"])) for step, m in rec["evaluations"]
                      if f"eval_{side}_loss" in m]
            if points:
                ax.plot(*zip(*points), marker="o", label=r["row"])
    for ax, side in zip(axes, ("general", "domain")):
        ax.set(xlabel="training tokens", ylabel=f"{side} validation perplexity", title=f"{side} ({record['domain']})")
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.suptitle(f"Recovery at {record['pattern']}: perplexity against training tokens")
    fig.tight_layout()
    fig.savefig(_figure(record, "curves"), dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 5))
    for r in record["rows"]:
        b, a = r["before"], r["after"]
        ax.annotate("", xy=(a["general_ppl"], a["domain_ppl"]), xytext=(b["general_ppl"], b["domain_ppl"]),
                    arrowprops={"arrowstyle": "->", "alpha": 0.6})
        ax.scatter([b["general_ppl"]], [b["domain_ppl"]], marker="x", color="grey")
        ax.scatter([a["general_ppl"]], [a["domain_ppl"]], label=f"{r['row']} (recovered)" if r["row"] != "dense"
                   else "dense (fine-tuned)")
    ax.set(xlabel="general (Wikipedia) test perplexity", ylabel=f"{record['domain']} test perplexity",
           title=f"Before (x) and after recovery, {record['pattern']}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(_figure(record, "tradeoff"), dpi=110)
    plt.close(fig)


def _write(out: str, record: dict) -> None:
    with open(out, "w", encoding="utf-8") as f:
        json.dump(record, f, indent=1)
    with open(os.path.splitext(out)[0] + ".md", "w", encoding="utf-8") as f:
        f.write(markdown(record))
    plots(record)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--domain", choices=["medical", "legal"], default="medical")
    parser.add_argument("--pattern", choices=["unstructured", "2:4"], default="unstructured")
    parser.add_argument("--rows", nargs="+", choices=list(ROWS), default=list(ROWS))
    parser.add_argument("--recovery-json", default="", help="RecoveryConfig fields as JSON (default: RecoveryConfig())")
    parser.add_argument("--eval-steps", type=int, default=16, help="validation evaluation every N steps (the curves)")
    parser.add_argument("--eval-windows", type=int, default=None, help="test windows per set, spread (default: all)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data", default=DATA, help="the data bundle (shared/data) holding the validation texts")
    parser.add_argument("--resume", action="store_true", help="keep the rows already in --out; run the missing ones")
    parser.add_argument("--tables-only", action="store_true", help="rewrite markdown and plots from --out")
    parser.add_argument("--out", required=True)
    parser.add_argument("--single", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.single:
        row = _single(args)
        sys.stdout.write("\nROW " + json.dumps(row) + "\n")
        return 0
    if args.tables_only:
        with open(args.out, encoding="utf-8") as f:
            _write(args.out, json.load(f))
        return 0
    from optimum_dpruner import RecoveryConfig

    recovery = RecoveryConfig(**json.loads(args.recovery_json)) if args.recovery_json else RecoveryConfig()
    record = {"command": command_line(__file__, sys.argv[1:] if argv is None else argv), "domain": args.domain,
              "pattern": args.pattern, "date": time.strftime("%Y-%m-%d"), "threads": args.threads,
              "recovery_config": recovery.to_dict(), "out": args.out, "rows": []}
    if args.resume and os.path.exists(args.out):
        with open(args.out, encoding="utf-8") as f:
            kept = json.load(f)
        record["rows"] = kept["rows"]  # the rows made by earlier commands, and what was said of them
        record["earlier_commands"] = kept.get("earlier_commands", []) + [kept["command"]]
        if "note" in kept:
            record["note"] = kept["note"]
    done = {r["row"] for r in record["rows"]}
    for name in args.rows:
        if name in done:
            continue
        command = [sys.executable, __file__, "--single", name, *[a for a in (sys.argv[1:] if argv is None else argv)
                                                                 if a != "--resume"]]
        wall = time.time()
        proc = subprocess.run(command, capture_output=True, text=True)
        if proc.returncode:
            sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-3000:])
            raise SystemExit(f"row {name} failed ({proc.returncode})")
        row = json.loads(proc.stdout.rsplit("\nROW ", 1)[1])
        row["wall_seconds"] = round(time.time() - wall, 1)
        record["rows"].append(row)
        _write(args.out, record)
        print(f"{name}: before {row['before']['general_ppl']:.2f} / {row['before']['domain_ppl']:.2f} -> after "
              f"{row['after']['general_ppl']:.2f} / {row['after']['domain_ppl']:.2f} ({row['wall_seconds']:.0f} s)", flush=True)
    print(markdown(record))
    return 0


if __name__ == "__main__":
    sys.exit(main())
